"""Algorithm pages: the list (by use case), one name's versions, upload, download,
delete, and two versions' metrics side by side."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_POST, require_safe

from django_admin.roles import MANAGERS_GROUP, manager_required, may_manage
from django_admin.site import catalog, retraining
from django_admin.site.failures import describe, status_for
from django_admin.site.forms import CompareForm, UploadForm, UseCaseFilter
from gits_common import errors


@require_safe
def algorithm_list(request: HttpRequest) -> HttpResponse:
    """Every algorithm queue_manager stores, with its latest version; `?use_case=` keeps
    those with a version of that use case."""
    found = catalog.algorithms()
    chooser = _chooser(request, found)
    if chooser.asked:
        found = [a for a in found if any(v["use_case"] == chooser.asked for v in a.versions)]
    context = {"algorithms": found, "chooser": chooser}
    return render(request, "gits/algorithms/list.html", context)


@require_safe
def algorithm_detail(request: HttpRequest, name: str) -> HttpResponse:
    """Every version of one algorithm, each with its download, and the way to compare
    two of them."""
    algorithm = catalog.algorithm(name)
    numbered = [v["version"] for v in algorithm.versions if v["version"] is not None]
    compare = None
    if len(numbered) > 1:  # the two newest, which a user most often compares
        compare = urlencode({"first": f"{name}:{numbered[1]}", "second": f"{name}:{numbered[0]}"})
    context = {"algorithm": algorithm, "compare": compare}
    return render(request, "gits/algorithms/detail.html", context)


@require_safe
def algorithm_download(request: HttpRequest, name: str, version: int) -> HttpResponse:
    """The model file of one version, streamed from queue_manager as it comes, with its
    file name and SHA-256 (`X-Checksum-SHA256`, to check the copy against).

    Only users who may manage models download: queue_manager gives model files to the
    runtime role and up, not to the read token every page uses, so the admin fetches it
    with its admin token, which it lends only to those users. A model file is also code
    that runs when it is loaded, and the trained asset itself: a read-only account sees
    its checksum and metadata, not its bytes."""
    if not may_manage(request.user):
        raise PermissionDenied(_download_refusal(request.user))
    try:
        model_file = catalog.open_version_file(name, version, user=request.user)
    except errors.NotFound:
        messages.error(
            request,
            f"queue_manager no longer holds the file of {name} version {version}: it was "
            "deleted, or its file is missing from queue_manager's store.",
        )
        return redirect("algorithms")
    response = StreamingHttpResponse(model_file.chunks, content_type="application/octet-stream")
    response["Content-Disposition"] = content_disposition_header(True, model_file.filename)
    if model_file.sha256:
        response["X-Checksum-SHA256"] = model_file.sha256
    if model_file.size:
        response["Content-Length"] = model_file.size
    return response


def _download_refusal(user: Any) -> str:
    return (
        f"Your account ({user.get_username()}) may look at models but not download their "
        "files: a model file is code that runs when it is loaded, so only users with the "
        "permission to manage models download it. Ask an administrator to add you to the "
        f'"{MANAGERS_GROUP}" group (Users, then your account). Nothing was changed.'
    )


@require_safe
def algorithm_compare(request: HttpRequest) -> HttpResponse:
    """Two versions of the same use case, their metrics side by side with the second's
    difference from the first, as retraining jobs measured them (`?first=` and
    `?second=`, "name:version"; `?use_case=` narrows the choices)."""
    found = catalog.algorithms()
    chooser = _chooser(request, found)
    if chooser.asked:
        found = [_of_use_case(a, chooser.asked) for a in found]
        found = [a for a in found if a.versions]
    asked = "first" in request.GET or "second" in request.GET
    form = CompareForm(request.GET if asked else None, algorithms=found)
    comparison = None
    if asked and form.is_valid():
        jobs = retraining.version_jobs(form.use_case() or "")
        comparison = retraining.compare_versions(
            form.cleaned_data["first"], form.cleaned_data["second"], jobs
        )
    context = {"form": form, "chooser": chooser, "comparison": comparison}
    status = 422 if asked and not form.is_valid() else 200
    return render(request, "gits/algorithms/compare.html", context, status=status)


def _chooser(request: HttpRequest, found: list[catalog.Algorithm]) -> UseCaseFilter:
    """The use case filter, offering the use cases the algorithms' versions belong to."""
    return UseCaseFilter(
        request.GET,
        use_cases=(v["use_case"] for a in found for v in a.versions),
        unknown="No algorithm has a version of use case %(value)s.",
    )


def _of_use_case(algorithm: catalog.Algorithm, use_case: str) -> catalog.Algorithm:
    return catalog.Algorithm(
        algorithm.name, [v for v in algorithm.versions if v["use_case"] == use_case]
    )


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
    except errors.Conflict:  # a service uses it
        messages.error(
            request,
            f'{name} version {version} was not deleted: a service uses it (see "Used by"). '
            "Rebind that service to another version first. Nothing was changed.",
        )
        return redirect("algorithm", name=name)
    except errors.NotFound:
        messages.error(
            request,
            f"queue_manager holds no {name} version {version} (deleted meanwhile?). "
            "Nothing was changed.",
        )
        return redirect("algorithms")
    messages.success(request, f"Deleted {name} version {version}.")
    try:
        catalog.algorithm(name)
    except errors.NotFound:
        return redirect("algorithms")
    return redirect("algorithm", name=name)
