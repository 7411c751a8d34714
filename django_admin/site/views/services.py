"""Service pages: the list, one service with what its workers use, create and rebind."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from django_admin.site import bindings, catalog
from django_admin.site.failures import describe, status_for
from django_admin.site.forms import BindForm, split_version
from gits_common import errors

RECENT_JOBS = 500


def service_list(request: HttpRequest) -> HttpResponse:
    """Every service and the algorithm version its workers use."""
    return render(request, "gits/services/list.html", {"services": bindings.services()})


def service_detail(request: HttpRequest, name: str) -> HttpResponse:
    """One service's binding and, from its recent jobs, the model each worker used."""
    record = bindings.service(name)
    context = {
        "service": record,
        "expected_model": bindings.used_model(record),
        "workers": bindings.worker_usage(name, limit=RECENT_JOBS),
        "recent_jobs": RECENT_JOBS,
    }
    return render(request, "gits/services/detail.html", context)


def service_bind(request: HttpRequest, name: str | None = None) -> HttpResponse:
    """Create a service (no name) or rebind one to another algorithm version."""
    initial = _current_binding(name) if name else {}
    form = BindForm(request.POST or None, initial=initial, algorithms=catalog.algorithms())
    if name:
        form.fields["name"].disabled = True  # a rebind keeps its name
    status = 200
    if request.method == "POST" and form.is_valid():
        algorithm_name, version = split_version(form.cleaned_data["algorithm"])
        binding = bindings.Binding(
            routing_key=form.cleaned_data["routing_key"],
            algorithm_name=algorithm_name,
            algorithm_version=version,
            updated_by=request.user.get_username(),
        )
        try:
            record, created = bindings.bind_service(form.cleaned_data["name"], binding)
        except errors.GitsError as exc:
            form.add_error(None, describe(exc, changing=True))
            status = status_for(exc)
        else:
            messages.success(request, _bound_message(record, created))
            return redirect("service", name=record["name"])
    elif request.method == "POST":
        status = 422
    context = {"form": form, "name": name}
    return render(request, "gits/services/bind.html", context, status=status)


def _current_binding(name: str) -> dict[str, str]:
    record = bindings.service(name)
    return {
        "name": record["name"],
        "routing_key": record["routing_key"],
        "algorithm": f"{record['algorithm_name']}@{record['algorithm_version']}",
    }


def _bound_message(record: dict[str, object], created: bool) -> str:
    verb = "created" if created else "rebound"
    text = (
        f"Service {record['name']} {verb}: it uses {record['algorithm_name']} "
        f"{record['algorithm_version']} (now version {record['resolved_version']})."
    )
    if not record.get("announced"):
        text += " RabbitMQ did not take the announcement: workers pick it up at their next check."
    return text
