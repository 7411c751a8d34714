"""Service pages: the list (by use case), one service with what its workers use,
create, rebind and delete. Creating never rebinds: a name that exists is refused, and
rebinding is the service's own form."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST, require_safe

from django_admin.roles import manager_required
from django_admin.site import bindings, catalog
from django_admin.site.failures import describe, status_for
from django_admin.site.forms import BindForm, UseCaseFilter, split_version
from gits_common import errors
from gits_common.amqp import dead_letter_queue

RECENT_JOBS = 500


@require_safe
def service_list(request: HttpRequest) -> HttpResponse:
    """Every service and the algorithm version its workers use; `?use_case=` keeps those
    of that use case."""
    found = bindings.services()
    chooser = UseCaseFilter(
        request.GET,
        use_cases=(s["use_case"] for s in found),
        unknown="No service serves use case %(value)s.",
    )
    if chooser.asked:
        found = [s for s in found if s["use_case"] == chooser.asked]
    context = {"services": found, "chooser": chooser}
    return render(request, "gits/services/list.html", context)


@require_safe
def service_detail(request: HttpRequest, name: str) -> HttpResponse:
    """One service's binding and, from its recent jobs, the model each worker used."""
    record = bindings.service(name)
    usage = bindings.worker_usage(name, limit=RECENT_JOBS)
    context = {
        "name": name,
        "service": record,
        "expected_model": bindings.used_model(record),
        "workers": usage.workers,
        "job_problems": usage.problems,
        "recent_jobs": RECENT_JOBS,
    }
    return render(request, "gits/services/detail.html", context)


@manager_required
def service_new(request: HttpRequest) -> HttpResponse:
    """Create a service; queue_manager refuses (409) a name that exists."""
    form = BindForm(request.POST or None, algorithms=catalog.algorithms())
    status = 200
    if request.method == "POST" and form.is_valid():
        name = form.cleaned_data["name"]
        try:
            record = bindings.create_service(name, _binding(form, request), user=request.user)
        except errors.Conflict as exc:
            form.add_error("name", _exists(name))
            form.add_error(None, describe(exc, changing=True))
            status = status_for(exc)
        except errors.GitsError as exc:
            form.add_error(None, describe(exc, changing=True))
            status = status_for(exc)
        else:
            messages.success(request, _bound_message(name, record, created=True))
            return redirect("service", name=name)
    elif request.method == "POST":
        status = 422
    return render(request, "gits/services/bind.html", {"form": form}, status=status)


@manager_required
def service_bind(request: HttpRequest, name: str) -> HttpResponse:
    """Rebind a service to another algorithm version of its use case; queue_manager
    refuses one of another use case, and its reason is shown."""
    current = bindings.service(name)
    form = BindForm(
        request.POST or None, initial=_initial(name, current), algorithms=catalog.algorithms()
    )
    form.fields["name"].disabled = True  # a rebind keeps its name
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            record, created = bindings.rebind_service(
                name, _binding(form, request), use_case=current["use_case"], user=request.user
            )
        except errors.GitsError as exc:
            form.add_error(None, describe(exc, changing=True))
            status = status_for(exc)
        else:
            messages.success(request, _bound_message(name, record, created=created))
            return redirect("service", name=name)
    elif request.method == "POST":
        status = 422
    context = {"form": form, "name": name, "service": current}
    return render(request, "gits/services/bind.html", context, status=status)


@require_POST
@manager_required
def service_delete(request: HttpRequest, name: str) -> HttpResponse:
    """Delete a service and its queue; queue_manager refuses while messages wait in the
    queue, and the page says how many."""
    try:
        kept = bindings.delete_service(name, user=request.user)
    except errors.Conflict as exc:
        messages.error(request, _not_deleted(name, bindings.waiting_messages(exc.detail)))
        return redirect("service", name=name)
    except errors.NotFound:
        messages.error(request, f"There is no service named {name} (deleted meanwhile?).")
        return redirect("services")
    except errors.GitsError as exc:
        messages.error(request, describe(exc, changing=True))
        return redirect("service", name=name)
    messages.success(request, _deleted_message(name, kept))
    return redirect("services")


def _not_deleted(name: str, waiting: int | None) -> str:
    count = "messages" if waiting is None else _messages(waiting)
    return (
        f"Service {name} was not deleted: {count} still wait in its queue, and deleting it "
        "would lose them. Start its workers to process them (or purge the queue in "
        "RabbitMQ), then delete it again. Nothing was changed."
    )


def _deleted_message(name: str, dead_letters: int) -> str:
    text = f"Deleted service {name} and its queue."
    if dead_letters:
        text += (
            f" Its dead-letter queue {dead_letter_queue(name)} was kept: it holds "
            f"{_messages(dead_letters)} that could not be processed, to look at in RabbitMQ."
        )
    return text


def _messages(count: int) -> str:
    return f"{count} message{'' if count == 1 else 's'}"


def _binding(form: BindForm, request: HttpRequest) -> bindings.Binding:
    algorithm_name, version = split_version(form.cleaned_data["algorithm"])
    return bindings.Binding(
        routing_key=form.cleaned_data["routing_key"],
        algorithm_name=algorithm_name,
        algorithm_version=version,
        updated_by=request.user.get_username(),
    )


def _exists(name: str) -> str:
    return format_html(
        'A service named {} exists; rebind it from <a href="{}">its page</a>.',
        name,
        reverse("service", kwargs={"name": name}),
    )


def _initial(name: str, record: dict[str, Any]) -> dict[str, str]:
    initial = {"name": name, "routing_key": record["routing_key"] or ""}
    if record["algorithm_name"] and record["algorithm_version"]:
        initial["algorithm"] = f"{record['algorithm_name']}@{record['algorithm_version']}"
    return initial


def _bound_message(name: str, record: dict[str, Any], *, created: bool) -> str:
    verb = "created" if created else "rebound"
    resolved = record["resolved_version"]
    text = (
        f"Service {name} {verb}: it uses {record['algorithm_name'] or '?'} "
        f"{record['algorithm_version'] or '?'} "
        f"({f'now version {resolved}' if resolved else 'no version found'})."
    )
    if not record["announced"]:
        text += " RabbitMQ did not take the announcement: workers pick it up at their next check."
    if record["problems"]:
        text += f" queue_manager's answer lacked: {'; '.join(record['problems'])}."
    return text
