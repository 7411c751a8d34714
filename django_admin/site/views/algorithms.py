"""Algorithm pages: the list, one name's versions, upload and delete."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST, require_safe

from django_admin.roles import manager_required
from django_admin.site import catalog
from django_admin.site.failures import describe, status_for
from django_admin.site.forms import UploadForm
from gits_common import errors


@require_safe
def algorithm_list(request: HttpRequest) -> HttpResponse:
    """Every algorithm queue_manager stores, with its latest version."""
    return render(request, "gits/algorithms/list.html", {"algorithms": catalog.algorithms()})


@require_safe
def algorithm_detail(request: HttpRequest, name: str) -> HttpResponse:
    """Every version of one algorithm."""
    return render(request, "gits/algorithms/detail.html", {"algorithm": catalog.algorithm(name)})


@manager_required
def algorithm_upload(request: HttpRequest) -> HttpResponse:
    """Upload a model file as the next version of a name. queue_manager checks the file
    (422 with which check failed and why): its reason is shown on the form, which keeps
    what the user entered."""
    use_cases = catalog.use_cases()
    form = UploadForm(
        request.POST or None,
        request.FILES or None,
        initial={"name": request.GET.get("name", "")},
        use_cases=use_cases.usable,
    )
    status = 200
    if request.method == "POST" and form.is_valid():
        upload = catalog.Upload(
            name=form.cleaned_data["name"],
            use_case=form.chosen_use_case(),
            description=form.cleaned_data["description"],
            uploaded_by=request.user.get_username(),
        )
        try:
            record = catalog.upload_algorithm(upload, form.cleaned_data["file"], user=request.user)
        except errors.GitsError as exc:
            form.add_error(None, describe(exc, changing=True))
            status = status_for(exc)
        else:
            messages.success(request, _uploaded_message(upload.name, record))
            return redirect("algorithm", name=upload.name)
    elif request.method == "POST":
        status = 422
    context = {"form": form, "unusable_use_cases": use_cases.unusable}
    return render(request, "gits/algorithms/upload.html", context, status=status)


def _uploaded_message(name: str, record: dict[str, Any]) -> str:
    text = (
        f"Uploaded {name} version {record['version'] or '?'} "
        f"({record['size'] if record['size'] is not None else '?'} bytes, "
        f"SHA-256 {record['sha256'] or '?'})."
    )
    if record["problems"]:
        text += f" queue_manager's answer lacked: {'; '.join(record['problems'])}."
    return text


@require_POST
@manager_required
def algorithm_delete(request: HttpRequest, name: str, version: int) -> HttpResponse:
    """Delete one version; queue_manager refuses while a service uses it."""
    try:
        catalog.delete_version(name, version, user=request.user)
    except errors.Conflict as exc:  # a service uses it
        messages.error(request, describe(exc, changing=True))
        return redirect("algorithm", name=name)
    except errors.NotFound as exc:
        messages.error(request, describe(exc, changing=True))
        return redirect("algorithms")
    messages.success(request, f"Deleted {name} version {version}.")
    try:
        catalog.algorithm(name)
    except errors.NotFound:
        return redirect("algorithms")
    return redirect("algorithm", name=name)
