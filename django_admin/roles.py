"""Who may change what. Every logged-in operator may read every page and dashboard;
registering and deleting model versions, creating and rebinding services, starting
retraining and explainer jobs, promoting and rolling back need the `manage_models`
permission (the "Model managers" group holds it; superusers have every permission).

A view refuses a user without it before it asks any API anything (`manager_required`,
`changes_need_manager`), and `django_admin.apis.acting_client`, the only way to the
admin token, checks it again, so a view that forgot its decorator still changes
nothing. A refusal is Django's 403 page (templates/403.html), in words."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

# The app label is the site app's (django_admin.site.models.Access declares it).
MANAGE_MODELS = "gits_site.manage_models"
MANAGERS_GROUP = "Model managers"
READS = frozenset({"GET", "HEAD", "OPTIONS"})

View = TypeVar("View", bound=Callable[..., HttpResponse])


def may_manage(user: Any) -> bool:
    """Whether `user` may change models, services and retraining."""
    return bool(user.is_active and user.has_perm(MANAGE_MODELS))


def refusal(user: Any) -> str:
    """Why `user` may not make a change, and how to get the permission."""
    return (
        f"Your account ({user.get_username()}) may look at models, services, retraining "
        "and dashboards but not change them: uploading or deleting model versions, "
        "creating or rebinding services, starting retraining or explainer jobs, promoting "
        "and rolling back need the permission to manage models. Ask an administrator to "
        f'add you to the "{MANAGERS_GROUP}" group (Users, then your account). '
        "Nothing was changed."
    )


def check_may_manage(user: Any) -> None:
    """Raise `PermissionDenied` (a 403 page in words) unless `user` may manage models."""
    if not may_manage(user):
        raise PermissionDenied(refusal(user))


def manager_required(view: View) -> View:
    """A view that only users who may manage models may open at all (a form that makes a
    change and shows nothing else)."""

    @wraps(view)
    def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        check_may_manage(request.user)
        return view(request, *args, **kwargs)

    return checked  # type: ignore[return-value]


def changes_need_manager(view: View) -> View:
    """A view every operator may read, whose changes (any method but a read) only users
    who may manage models may make."""

    @wraps(view)
    def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method not in READS:
            check_may_manage(request.user)
        return view(request, *args, **kwargs)

    return checked  # type: ignore[return-value]
