"""Retraining pages: jobs and their progress, champion against challenger, promotion,
rollback, and explainer dashboards."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from django_admin.site import bindings, catalog, retraining
from django_admin.site.failures import describe, status_for
from django_admin.site.forms import ExplainerForm, RetrainForm
from django_admin.site.proxy import html_page
from gits_common import errors

REFRESH_SECONDS = 3


def job_list(request: HttpRequest) -> HttpResponse:
    """Retraining jobs, newest first; the page refreshes while one is running."""
    jobs = retraining.jobs()
    context = {"jobs": jobs, "refresh": REFRESH_SECONDS if _any_active(jobs) else None}
    return render(request, "gits/retraining/jobs.html", context)


def job_start(request: HttpRequest) -> HttpResponse:
    """Start a retraining job."""
    use_cases = [u.name for u in catalog.use_cases()]
    services = [s["name"] for s in bindings.services()]
    form = RetrainForm(request.POST or None, use_cases=use_cases, services=services)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            job = retraining.start_job(form.request_body(request.user.get_username()))
        except errors.GitsError as exc:
            form.add_error(None, describe(exc, changing=True))
            status = status_for(exc)
        else:
            messages.success(request, f"Retraining job {job['id']} started.")
            return redirect("retraining_job", job_id=job["id"])
    elif request.method == "POST":
        status = 422
    return render(request, "gits/retraining/start.html", {"form": form}, status=status)


def job_detail(request: HttpRequest, job_id: int) -> HttpResponse:
    """A job's progress, then its champion against its challenger and its decision."""
    job = retraining.job(job_id)
    context = {
        "job": job,
        "rows": retraining.comparison(job.get("result")),
        "held_out": retraining.held_out_rows(job.get("result")),
        "refresh": REFRESH_SECONDS if job["active"] else None,
    }
    return render(request, "gits/retraining/job.html", context)


@require_POST
def job_promote(request: HttpRequest, job_id: int) -> HttpResponse:
    """Bind the job's challenger to its service."""
    try:
        promotion = retraining.promote(job_id, requested_by=request.user.get_username())
    except (errors.Conflict, errors.InvalidInput, errors.NotFound) as exc:
        messages.error(request, describe(exc, changing=True))
    else:
        messages.success(request, _promotion_message(promotion))
    return redirect("retraining_job", job_id=job_id)


@require_POST
def service_rollback(request: HttpRequest, service: str) -> HttpResponse:
    """Bind the service back to the model it used before its last promotion."""
    try:
        promotion = retraining.rollback(service, requested_by=request.user.get_username())
    except (errors.Conflict, errors.InvalidInput, errors.NotFound) as exc:
        messages.error(request, describe(exc, changing=True))
    else:
        messages.success(request, _promotion_message(promotion))
    return redirect("promotions")


def promotion_list(request: HttpRequest) -> HttpResponse:
    """Promotions and rollbacks, newest first, with a rollback button per service."""
    service = request.GET.get("service") or None
    promotions = retraining.promotions(service=service)
    services = sorted({p["service"] for p in promotions})
    context = {"promotions": promotions, "service": service, "services": services}
    return render(request, "gits/retraining/promotions.html", context)


def explainer_list(request: HttpRequest) -> HttpResponse:
    """Explainer jobs and the form that starts one."""
    form = ExplainerForm(request.POST or None, algorithms=catalog.algorithms())
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            job = retraining.start_explainer(form.request_body(request.user.get_username()))
        except errors.GitsError as exc:
            form.add_error(None, describe(exc, changing=True))
            status = status_for(exc)
        else:
            return redirect("explainer", job_id=job["id"])
    elif request.method == "POST":
        status = 422
    jobs = retraining.explainers()
    context = {"form": form, "jobs": jobs, "refresh": None}
    return render(request, "gits/retraining/explainers.html", context, status=status)


@require_POST
def job_explain(request: HttpRequest, job_id: int) -> HttpResponse:
    """Build an explainer dashboard of a retraining job's challenger."""
    body = {"job_id": job_id, "data": request.POST.get("data", "production")}
    try:
        job = retraining.start_explainer(body | {"requested_by": request.user.get_username()})
    except (errors.Conflict, errors.InvalidInput, errors.NotFound) as exc:
        messages.error(request, describe(exc, changing=True))
        return redirect("retraining_job", job_id=job_id)
    return redirect("explainer", job_id=job["id"])


def explainer_detail(request: HttpRequest, job_id: int) -> HttpResponse:
    """An explainer job's progress and, once built, the link to its dashboard."""
    job = retraining.explainer(job_id)
    context = {"job": job, "refresh": REFRESH_SECONDS if job["active"] else None}
    return render(request, "gits/retraining/explainer.html", context)


def explainer_page(request: HttpRequest, job_id: int) -> HttpResponse:
    """The explainer dashboard itself, fetched with the API token the browser lacks."""
    return html_page(retraining.explainer_html(job_id))


def _any_active(jobs: list[dict[str, object]]) -> bool:
    return any(job["active"] for job in jobs)


def _promotion_message(promotion: dict[str, object]) -> str:
    action = "Rolled back" if promotion.get("action") == "rollback" else "Promoted"
    return (
        f"{action} {promotion.get('service')}: {promotion.get('from_version') or '(none)'} "
        f"-> {promotion.get('to_version')}."
    )
