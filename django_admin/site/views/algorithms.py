"""Algorithm pages: the list, one name's versions, upload and delete."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from django_admin.site import catalog
from django_admin.site.failures import describe, status_for
from django_admin.site.forms import UploadForm
from gits_common import errors


def algorithm_list(request: HttpRequest) -> HttpResponse:
    """Every algorithm queue_manager stores, with its latest version."""
    return render(request, "gits/algorithms/list.html", {"algorithms": catalog.algorithms()})


def algorithm_detail(request: HttpRequest, name: str) -> HttpResponse:
    """Every version of one algorithm."""
    return render(request, "gits/algorithms/detail.html", {"algorithm": catalog.algorithm(name)})


def algorithm_upload(request: HttpRequest) -> HttpResponse:
    """Upload a model file as the next version of a name."""
    form = UploadForm(
        request.POST or None,
        request.FILES or None,
        initial={"name": request.GET.get("name", "")},
        use_cases=catalog.use_cases(),
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
            record = catalog.upload_algorithm(upload, form.cleaned_data["file"])
        except errors.GitsError as exc:
            form.add_error(None, describe(exc, changing=True))
            status = status_for(exc)
        else:
            messages.success(
                request,
                f"Uploaded {record['name']} version {record['version']} "
                f"({record['size']} bytes, SHA-256 {record['sha256']}).",
            )
            return redirect("algorithm", name=record["name"])
    elif request.method == "POST":
        status = 422
    return render(request, "gits/algorithms/upload.html", {"form": form}, status=status)


@require_POST
def algorithm_delete(request: HttpRequest, name: str, version: int) -> HttpResponse:
    """Delete one version; queue_manager refuses while a service uses it."""
    try:
        catalog.delete_version(name, version)
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
