"""Alert pages: the open alerts of every use case (or all of one use case), each with the
report of its window, an acknowledgement and a retraining of its use case."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST, require_safe

from django_admin.roles import manager_required
from django_admin.site import alerts, bindings, retraining
from django_admin.site.context import forget_open_alerts
from django_admin.site.failures import describe
from gits_common import errors


@require_safe
def alert_list(request: HttpRequest) -> HttpResponse:
    """Open alerts, newest first; with `?use_case=`, that use case's alerts of the last
    week, acknowledged or not, with its services to retrain and the jobs started since."""
    use_case = request.GET.get("use_case") or None
    found = alerts.use_case_alerts(use_case) if use_case else alerts.open_alerts()
    names = sorted({a["use_case"] for a in found if a["use_case"]})
    services = [s for s in bindings.services() if s["use_case"] in names]
    try:
        jobs = [j for j in retraining.jobs(limit=100) if j["use_case"] in names]
    except errors.GitsError as exc:  # the alerts are still worth reading
        jobs = []
        messages.warning(request, f"Retraining jobs are not shown: {describe(exc, changing=False)}")
    for alert in found:
        alert["services"] = [s["name"] for s in services if s["use_case"] == alert["use_case"]]
        alert["jobs"] = [
            j
            for j in jobs
            if j["use_case"] == alert["use_case"]
            and j["created_at"] is not None
            and alert["time"] is not None
            and j["created_at"] >= alert["time"]
        ]
    context = {"alerts": found, "use_case": use_case}
    return render(request, "gits/alerts.html", context)


@require_POST
@manager_required
def alert_acknowledge(request: HttpRequest, use_case: str, alert_id: int) -> HttpResponse:
    """Acknowledge an alert as the user; back to where the user came from."""
    try:
        alert = alerts.acknowledge(use_case, alert_id, user=request.user)
    except errors.GitsError as exc:
        messages.error(request, describe(exc, changing=True))
    else:
        forget_open_alerts()
        messages.success(
            request,
            f"Alert acknowledged ({alert['what']}) by {alert['acknowledged_by']}.",
        )
    return redirect(_back(request))


@require_POST
@manager_required
def alert_retrain(request: HttpRequest, use_case: str) -> HttpResponse:
    """Start a retraining job of the use case (the service chosen, its model the
    champion) and show it: its page links the champion/challenger result when done."""
    service = request.POST.get("service") or None
    try:
        job = alerts.retrain(use_case, service, user=request.user)
    except errors.GitsError as exc:
        messages.error(request, describe(exc, changing=True))
        return redirect(_back(request))
    messages.success(request, f"Retraining of {use_case} started as job #{job['id']}.")
    return redirect("retraining_job", job_id=job["id"])


def _back(request: HttpRequest) -> str:
    """The page to go back to: the `next` field when it is a path of this site."""
    target = request.POST.get("next", "")
    safe = url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()})
    return target if target and safe else reverse("alerts")
