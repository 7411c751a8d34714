"""Django settings of the GITS admin; the only module of the service that reads the
environment. Django keeps only its users here (SQLite): algorithms, services, jobs and
reports stay with the APIs that own them."""

from __future__ import annotations

from pathlib import Path

from decouple import Csv

from gits_common.settings import amqp_url, api_token, config, required

BASE_DIR = Path(__file__).resolve().parent

SECRET_KEY = required("DJANGO_SECRET_KEY")
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
GITS_API_TOKEN = api_token()
GITS_API_TIMEOUT: float = config("DJANGO_API_TIMEOUT", default=60.0, cast=float)
# The dashboards read dead-letter queue depths from RabbitMQ.
GITS_AMQP_URL = amqp_url()

# Model files larger than this are refused before they reach queue_manager.
GITS_MAX_UPLOAD_MB: int = config("DJANGO_MAX_UPLOAD_MB", default=512, cast=int)
# Uploads bigger than this spool to a temporary file instead of memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 8 * 1024 * 1024

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_plotly_dash.apps.DjangoPlotlyDashConfig",
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
    "django_admin.site.failures.ApiErrorMiddleware",
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

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": f"django.contrib.auth.password_validation.{name}"}
    for name in (
        "UserAttributeSimilarityValidator",
        "MinimumLengthValidator",
        "CommonPasswordValidator",
        "NumericPasswordValidator",
    )
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "algorithms"
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

# Dashboards render inside iframes of our own pages ({% plotly_app %}).
X_FRAME_OPTIONS = "SAMEORIGIN"
PLOTLY_DASH = {
    # Without it django-plotly-dash's endpoints are open to anyone.
    "view_decorator": "django_plotly_dash.access.login_required",
    "serve_locally": True,
    # Its demo migration would add example apps; never wanted here.
    "insert_demo_migrations": False,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"line": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "line"}},
    "root": {"handlers": ["stderr"], "level": config("LOG_LEVEL", default="INFO").upper()},
    # One line per HTTP call to the APIs drowns what matters.
    "loggers": {"httpx": {"level": "WARNING"}},
}
