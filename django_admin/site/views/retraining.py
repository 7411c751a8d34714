"""Retraining pages: jobs and their progress, champion against challenger, promotion,
rollback, and explainer dashboards."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST, require_safe

from django_admin.roles import changes_need_manager, manager_required, may_manage
from django_admin.site import bindings, catalog, retraining
from django_admin.site.failures import describe, status_for
from django_admin.site.forms import ExplainerForm, RetrainForm
from django_admin.site.proxy import html_page
from gits_common import errors

REFRESH_SECONDS = 3


@require_safe
def job_list(request: HttpRequest) -> HttpResponse:
    """Retraining jobs, newest first; the page refreshes while one is running."""
    jobs = retraining.jobs()
    context = {"jobs": jobs, "refresh": REFRESH_SECONDS if _any_active(jobs) else None}
    return render(request, "gits/retraining/jobs.html", context)


@manager_required
def job_start(request: HttpRequest) -> HttpResponse:
    """Start a retraining job."""
    use_cases = catalog.use_cases()
    services = [s["name"] for s in bindings.services() if s["name"]]
    form = RetrainForm(
        request.POST or None, use_cases=[u.name for u in use_cases.usable], services=services
    )
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
    context = {"form": form, "unusable_use_cases": use_cases.unusable}
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
    """The explainer dashboard itself, fetched with the API token the browser lacks."""
    return html_page(retraining.explainer_html(job_id))


def _any_active(jobs: list[dict[str, object]]) -> bool:
    return any(job["active"] for job in jobs)


def _to_job(request: HttpRequest, job: dict[str, Any], page: str, listing: str) -> HttpResponse:
    """The page of a job just started, or its list when the answer had no id."""
    if job["id"] is None:
        messages.warning(
            request, f"retraining_api started the job but answered no usable id: {job['problems']}"
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
