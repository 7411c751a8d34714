"""Retraining pages: jobs and their progress, champion against challenger, promotion,
rollback, and explainer dashboards."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_POST, require_safe

from django_admin.roles import changes_need_manager, manager_required, may_manage
from django_admin.site import bindings, catalog, retraining
from django_admin.site.failures import describe, status_for
from django_admin.site.forms import ExplainerForm, RetrainForm, UseCaseFilter
from django_admin.site.proxy import html_page
from gits_common import errors

REFRESH_SECONDS = 3


@require_safe
def job_list(request: HttpRequest) -> HttpResponse:
    """Retraining jobs, newest first, of every use case or of `?use_case=`; the page
    refreshes while one is running."""
    chooser = UseCaseFilter(
        request.GET,
        use_cases=(u.name for u in catalog.use_cases().usable),
        unknown="There is no use case named %(value)s.",
    )
    # A name ml_data_api does not define has no jobs: retraining_api is not asked.
    jobs = retraining.jobs(use_case=chooser.asked) if chooser.known else []
    context = {
        "jobs": jobs,
        "chooser": chooser,
        "refresh": REFRESH_SECONDS if _any_active(jobs) else None,
    }
    return render(request, "gits/retraining/jobs.html", context)


@manager_required
def job_start(request: HttpRequest) -> HttpResponse:
    """Start a retraining job: first the use case (`?use_case=`, a plain link or form, no
    script needed), then the form for it, whose choices are its services, its task's
    metrics and PyCaret's models for its task."""
    use_cases = catalog.use_cases()
    usable = {u.name: u for u in use_cases.usable}
    asked = request.POST.get("use_case") or request.GET.get("use_case")
    if asked is None and len(usable) == 1:
        asked = next(iter(usable))
    context: dict[str, Any] = {
        "use_cases": list(usable),
        "chosen": asked,
        "unusable_use_cases": use_cases.unusable,
        "form": None,
    }
    if asked not in usable:
        status = _choosing_status(request, asked)
        return render(request, "gits/retraining/start.html", context, status=status)
    use_case = usable[asked]
    services = [s["name"] for s in bindings.services(use_case=use_case.name) if s["name"]]
    form = RetrainForm(request.POST or None, use_case=use_case, services=services)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            job = retraining.start_job(
                form.request_body(request.user.get_username()), user=request.user
            )
        except errors.GitsError as exc:
            form.add_error(None, describe(exc, changing=True))
            status = status_for(exc)
        else:
            return _to_job(request, job, "retraining_job", "retraining")
    elif request.method == "POST":
        status = 422
    context |= {"form": form, "use_case": use_case}
    return render(request, "gits/retraining/start.html", context, status=status)


@require_safe
def job_detail(request: HttpRequest, job_id: int) -> HttpResponse:
    """A job's progress, then its champion against its challenger and its decision."""
    job = retraining.job(job_id)
    context = {
        "job_id": job_id,
        "job": job,
        "rows": retraining.comparison(job["result"]),
        "held_out": retraining.held_out_rows(job["result"]),
        "refresh": REFRESH_SECONDS if job["active"] else None,
    }
    return render(request, "gits/retraining/job.html", context)


@require_POST
@manager_required
def job_promote(request: HttpRequest, job_id: int) -> HttpResponse:
    """Bind the job's challenger to its service."""
    try:
        promotion = retraining.promote(job_id, user=request.user)
    except (errors.Conflict, errors.InvalidInput, errors.NotFound) as exc:
        messages.error(request, describe(exc, changing=True))
    else:
        messages.success(request, _promotion_message(promotion))
    return redirect("retraining_job", job_id=job_id)


@require_POST
@manager_required
def service_rollback(request: HttpRequest, service: str) -> HttpResponse:
    """Bind the service back to the model it used before its last promotion."""
    try:
        promotion = retraining.rollback(service, user=request.user)
    except (errors.Conflict, errors.InvalidInput, errors.NotFound) as exc:
        messages.error(request, describe(exc, changing=True))
    else:
        messages.success(request, _promotion_message(promotion))
    return redirect("promotions")


@require_safe
def promotion_list(request: HttpRequest) -> HttpResponse:
    """Promotions and rollbacks, newest first, with a rollback button per service."""
    service = request.GET.get("service") or None
    promotions = retraining.promotions(service=service)
    services = sorted({p["service"] for p in promotions if p["service"]})
    context = {"promotions": promotions, "service": service, "services": services}
    return render(request, "gits/retraining/promotions.html", context)


@changes_need_manager
def explainer_list(request: HttpRequest) -> HttpResponse:
    """Explainer jobs and, for a user who may start one, the form that does."""
    if not may_manage(request.user):
        context = {"form": None, "jobs": retraining.explainers(), "refresh": None}
        return render(request, "gits/retraining/explainers.html", context)
    form = ExplainerForm(request.POST or None, algorithms=catalog.algorithms())
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            job = retraining.start_explainer(
                form.request_body(request.user.get_username()), user=request.user
            )
        except errors.GitsError as exc:
            form.add_error(None, describe(exc, changing=True))
            status = status_for(exc)
        else:
            return _to_job(request, job, "explainer", "explainers")
    elif request.method == "POST":
        status = 422
    jobs = retraining.explainers()
    context = {"form": form, "jobs": jobs, "refresh": None}
    return render(request, "gits/retraining/explainers.html", context, status=status)


@require_POST
@manager_required
def job_explain(request: HttpRequest, job_id: int) -> HttpResponse:
    """Build an explainer dashboard of a retraining job's challenger."""
    body = {"job_id": job_id, "data": request.POST.get("data", "production")}
    try:
        requested_by = {"requested_by": request.user.get_username()}
        job = retraining.start_explainer(body | requested_by, user=request.user)
    except (errors.Conflict, errors.InvalidInput, errors.NotFound) as exc:
        messages.error(request, describe(exc, changing=True))
        return redirect("retraining_job", job_id=job_id)
    return _to_job(request, job, "explainer", "explainers")


@require_safe
def explainer_detail(request: HttpRequest, job_id: int) -> HttpResponse:
    """An explainer job's progress and, once built, the link to its dashboard."""
    job = retraining.explainer(job_id)
    context = {
        "job_id": job_id,
        "job": job,
        "refresh": REFRESH_SECONDS if job["active"] else None,
    }
    return render(request, "gits/retraining/explainer.html", context)


@require_safe
def explainer_page(request: HttpRequest, job_id: int) -> HttpResponse:
    """The explainer dashboard itself, fetched with the API token the browser lacks, under
    GITS's bar back to its job, the retraining job whose challenger it explains, and the
    list of dashboards."""
    page = retraining.explainer_html(job_id)
    try:
        job: dict[str, Any] | None = retraining.explainer(job_id)
    except errors.GitsError:  # the page is here: the bar links what needs no record
        job = None
    context = {"job_id": job_id, "job": job}
    bar = render_to_string("gits/retraining/explainer_bar.html", context, request)
    return html_page(retraining.with_bar(page, bar.strip()))


def _choosing_status(request: HttpRequest, asked: str | None) -> int:
    """The start page without a usable use case: the first step (nothing chosen yet), a
    name ml_data_api does not define, or a form posted without one."""
    if request.method == "POST":
        return 422
    return 200 if asked is None else 404


def _any_active(jobs: list[dict[str, object]]) -> bool:
    return any(job["active"] for job in jobs)


def _to_job(request: HttpRequest, job: dict[str, Any], page: str, listing: str) -> HttpResponse:
    """The page of a job just started, or its list when the answer had no id."""
    if job["id"] is None:
        messages.warning(
            request,
            "retraining_api started the job but its answer lacked a usable job number, so "
            "its page cannot be opened from here: find it in the list below.",
        )
        return redirect(listing)
    if page == "retraining_job":
        messages.success(request, f"Retraining job {job['id']} started.")
    return redirect(page, job_id=job["id"])


def _promotion_message(promotion: dict[str, object]) -> str:
    action = "Rolled back" if promotion.get("action") == "rollback" else "Promoted"
    return (
        f"{action} {promotion.get('service')}: {promotion.get('from_version') or '(none)'} "
        f"-> {promotion.get('to_version')}."
    )
