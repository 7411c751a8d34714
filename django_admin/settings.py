"""Django settings of the GITS admin; the only module of the service that reads the
environment. Django keeps only its users here (SQLite): algorithms, services, jobs and
reports stay with the APIs that own them."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from decouple import Csv

from gits_common.settings import (
    MissingSetting,
    Role,
    amqp_url,
    config,
    log_format,
    logging_config,
    secret,
    token,
)

BASE_DIR = Path(__file__).resolve().parent

# Signs sessions and CSRF tokens: required, at least 32 characters. Django's deploy
# check (security.W009) wants 50 or more; a production key should have them.
SECRET_KEY = secret("DJANGO_SECRET_KEY")
DEBUG = config("DJANGO_DEBUG", default=False, cast=bool)
ALLOWED_HOSTS: list[str] = config("DJANGO_ALLOWED_HOSTS", default="127.0.0.1,localhost", cast=Csv())
ADMIN_HOST: str = config("DJANGO_ADMIN_HOST", default="127.0.0.1")
ADMIN_PORT: int = config("DJANGO_ADMIN_PORT", default=8000, cast=int)
# The first superuser, created at start when none exists; no password: one is generated
# and printed once.
GITS_SUPERUSER_USERNAME: str = config("DJANGO_SUPERUSER_USERNAME", default="gits-admin")
GITS_SUPERUSER_PASSWORD: str = config("DJANGO_SUPERUSER_PASSWORD", default="")

# --- The GITS APIs the admin fronts (django_admin.apis reads these) ---
GITS_API_URLS: dict[str, str] = {
    "queue_manager": config("QUEUE_MANAGER_URL", default="http://127.0.0.1:8001"),
    "ml_data_api": config("ML_DATA_API_URL", default="http://127.0.0.1:8004"),
    "monitoring_api": config("MONITORING_API_URL", default="http://127.0.0.1:8005"),
    "retraining_api": config("RETRAINING_API_URL", default="http://127.0.0.1:8006"),
}
# Two role tokens, each required and at least 32 characters (the admin refuses to start
# otherwise, naming the setting): every page and dashboard reads with the read token,
# which the APIs let GET only; the admin token goes only with a change that a user
# holding the "manage models" permission asked for (django_admin.apis). There is no
# fallback to the former shared GITS_API_TOKEN.
GITS_READ_TOKEN = token(Role.read)
GITS_ADMIN_TOKEN = token(Role.admin)
if GITS_READ_TOKEN == GITS_ADMIN_TOKEN:
    # Every page would then read with the power to change anything.
    raise MissingSetting("GITS_READ_TOKEN and GITS_ADMIN_TOKEN must be different secrets")
# Seconds the admin waits for an API's answer to a read before the page says "X is not
# answering" (the issue that set it: pages sat on a blank spinner for 61 s), and to a
# change or a report, which can take longer to make (a model file's checks, an
# Evidently report of 100,000 rows).
GITS_API_TIMEOUT: float = config("DJANGO_API_TIMEOUT", default=10.0, cast=float)
GITS_API_SLOW_TIMEOUT: float = config("DJANGO_API_SLOW_TIMEOUT", default=120.0, cast=float)
# The dashboards read dead-letter queue depths from RabbitMQ.
GITS_AMQP_URL = amqp_url()

# Model files larger than this are refused before they reach queue_manager.
GITS_MAX_UPLOAD_MB: int = config("DJANGO_MAX_UPLOAD_MB", default=512, cast=int)
# Uploads bigger than this spool to a temporary file instead of memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 8 * 1024 * 1024

# --- HTTPS (production) ---
# DJANGO_SECURE_HTTPS=true when people reach the admin over HTTPS (directly or through a
# TLS-terminating proxy): plain HTTP is redirected to HTTPS, the session and CSRF
# cookies are sent over HTTPS only, and browsers are told (HSTS) never to use plain HTTP
# for this host again. `manage check --deploy` is then clean.
# Off (the default) for `make run`, which serves plain HTTP on 127.0.0.1: there a
# redirect to HTTPS would lead nowhere, a Secure cookie would never come back (no login
# at all), and HSTS would pin the browser to an HTTPS port nothing listens on. So in this
# local mode `check --deploy` still names security.W004 (HSTS), W008 (SSL redirect),
# W012 (session cookie) and W016 (CSRF cookie): they cannot apply to plain HTTP.
GITS_SECURE_HTTPS: bool = config("DJANGO_SECURE_HTTPS", default=False, cast=bool)
SECURE_SSL_REDIRECT = GITS_SECURE_HTTPS
SESSION_COOKIE_SECURE = GITS_SECURE_HTTPS
CSRF_COOKIE_SECURE = GITS_SECURE_HTTPS
# A year, subdomains included, and the consent to browsers' preload lists: what
# `check --deploy` asks for. An operator unsure of every subdomain sets the first lower
# (e.g. 3600) while trying HTTPS out, or turns the other two off.
SECURE_HSTS_SECONDS: int = (
    config("DJANGO_HSTS_SECONDS", default=31_536_000, cast=int) if GITS_SECURE_HTTPS else 0
)
SECURE_HSTS_INCLUDE_SUBDOMAINS: bool = config(
    "DJANGO_HSTS_INCLUDE_SUBDOMAINS", default=True, cast=bool
)
SECURE_HSTS_PRELOAD: bool = config("DJANGO_HSTS_PRELOAD", default=True, cast=bool)
# The address of the reverse proxy in front of the admin (e.g. 127.0.0.1 for an nginx on
# the same host), empty when there is none. Waitress then takes the client's address and
# scheme from that proxy's X-Forwarded-For and X-Forwarded-Proto, and strips those
# headers from anyone else, so a client can never claim HTTPS or another address (the
# lockout counts failures per address).
GITS_TRUSTED_PROXY: str = config("DJANGO_TRUSTED_PROXY", default="")
if GITS_TRUSTED_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Origins a form may be posted from besides the admin's own host, comma separated
# (https://admin.example.org): needed when the proxy changes the Host header.
CSRF_TRUSTED_ORIGINS: list[str] = config("DJANGO_CSRF_TRUSTED_ORIGINS", default="", cast=Csv())
SESSION_COOKIE_HTTPONLY = True
# The dashboards and pages never read the CSRF cookie from JavaScript.
CSRF_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_plotly_dash.apps.DjangoPlotlyDashConfig",
    # Counts failed logins and locks an account out (see the lockout settings below).
    "axes",
    "django_admin.site.apps.SiteConfig",
    "django_admin.dashboards.apps.DashboardsConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files (Dash's JavaScript among them) are served by the app itself: the
    # platform runs without internet and without a separate web server.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Every page, the Dash endpoints included, needs a logged-in user; only the login
    # view is exempt (Django marks it so).
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_plotly_dash.middleware.BaseMiddleware",
    "django_admin.dashboards.middleware.DashRequestErrors",
    "django_admin.site.failures.ApiErrorMiddleware",
    # Last, as django-axes asks: turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    # First: refuses a locked-out username+address before the password is even checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "django_admin.urls"
WSGI_APPLICATION = "django_admin.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django_admin.site.context.open_alerts",
            ]
        },
    }
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": config("DJANGO_DB_PATH", default="var/django_admin.sqlite3"),
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Every password set (the first superuser's, a change, a new user in /users/) must pass
# these. Django's common-password list holds 20,000 leaked passwords compared whole;
# django_admin.site.passwords also refuses a well-known word dressed up with digits,
# symbols or letter swaps (P@ssw0rd2024!), which length alone lets through.
MIN_PASSWORD_LENGTH = 12
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": MIN_PASSWORD_LENGTH},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    {"NAME": "django_admin.site.passwords.BreachedPasswordValidator"},
]

# --- Lockout after failed logins (django-axes) ---
# After DJANGO_LOGIN_FAILURE_LIMIT failed logins of one username from one address, that
# username is refused from that address (even with the right password) until
# DJANGO_LOGIN_COOLOFF_MINUTES after the failure that locked it. Per username and
# address together, so that someone guessing from elsewhere cannot lock the real user
# out. Unlock sooner: `python -m django_admin manage axes_reset_username <username>`.
AXES_FAILURE_LIMIT: int = config("DJANGO_LOGIN_FAILURE_LIMIT", default=5, cast=int)
AXES_COOLOFF_TIME = timedelta(
    minutes=config("DJANGO_LOGIN_COOLOFF_MINUTES", default=15.0, cast=float)
)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
# A successful login forgets the failures before it.
AXES_RESET_ON_SUCCESS = True
# Tries while locked out are refused without being counted, so the lock ends when the
# page said it would.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# The page saying the account is locked, until when, and how to get it unlocked.
AXES_LOCKOUT_CALLABLE = "django_admin.site.lockout.locked_out"

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "overview"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = config("DJANGO_TIME_ZONE", default="UTC")
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
# `python -m django_admin` collects every static file here at start; WhiteNoise serves them.
STATIC_ROOT = config("DJANGO_STATIC_ROOT", default="var/django_static")
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    # Dash's renderer, core components and the Dash apps' assets, served locally.
    "django_plotly_dash.finders.DashAssetFinder",
    "django_plotly_dash.finders.DashComponentFinder",
    "django_plotly_dash.finders.DashAppDirectoryFinder",
]
# Component packages whose JavaScript the dashboards use beyond Dash's own.
PLOTLY_COMPONENTS = ["dpd_components", "dash_bootstrap_components"]

# No page may be shown in a frame, but the Dash apps, which render inside frames of our
# own pages ({% plotly_app %}): their view decorator allows that origin alone.
X_FRAME_OPTIONS = "DENY"
PLOTLY_DASH = {
    # Login required, and framed by the admin's own pages only.
    "view_decorator": "django_admin.dashboards.access.framed_login_required",
    "serve_locally": True,
    # Its demo migration would add example apps; never wanted here.
    "insert_demo_migrations": False,
}

# The services' logging: LOG_LEVEL, and LOG_FORMAT (plain or JSON lines).
LOGGING = logging_config("django_admin")
LOG_FORMAT = log_format()
