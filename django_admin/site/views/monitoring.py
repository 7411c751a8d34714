"""Monitoring reports: any Evidently report of a chosen window, as a page."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from django_admin.site import catalog, reports
from django_admin.site.failures import describe, status_for
from django_admin.site.forms import ReportForm
from django_admin.site.proxy import html_page
from gits_common import errors


@require_safe
def report(request: HttpRequest) -> HttpResponse:
    """The report form; once submitted, monitoring_api's HTML report itself."""
    use_cases = catalog.use_cases()
    submitted = "kind" in request.GET
    names = [u.name for u in use_cases.usable]
    form = ReportForm(request.GET if submitted else None, use_cases=names)
    status = 200
    if submitted and form.is_valid():
        query = reports.ReportQuery(**form.cleaned_data)
        try:
            return html_page(reports.report_html(query))
        except errors.GitsError as exc:
            form.add_error(None, describe(exc, changing=False))
            status = status_for(exc)
    elif submitted:
        status = 422
    context = {"form": form, "unusable_use_cases": use_cases.unusable}
    return render(request, "gits/monitoring/report.html", context, status=status)
