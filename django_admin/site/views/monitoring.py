"""Monitoring reports: any Evidently report of a chosen window, inside the admin's page
with its title, its window in words and a download button."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_safe

from django_admin.site import catalog, reports
from django_admin.site.failures import describe, status_for
from django_admin.site.forms import ReportForm
from django_admin.site.proxy import html_page
from gits_common import errors

# `view=` of a submitted report: the admin's page around it (default), the report alone
# (the page's frame), or the report as a file.
VIEWS = frozenset({"page", "frame", "download"})


@require_safe
@xframe_options_sameorigin  # the page frames the report; no other site can
def report(request: HttpRequest) -> HttpResponse:
    """The report form; once submitted, the report in the admin's page (`view=frame`:
    the report alone, `view=download`: as an HTML file)."""
    use_cases = catalog.use_cases()
    submitted = "kind" in request.GET
    names = [u.name for u in use_cases.usable]
    form = ReportForm(request.GET if submitted else None, use_cases=names)
    status = 200
    if submitted and form.is_valid():
        query = reports.ReportQuery(**form.cleaned_data)
        view = request.GET.get("view", "page")
        try:
            body = reports.report_html(query)
        except errors.GitsError as exc:
            form.add_error(None, describe(exc, changing=False))
            status = status_for(exc)
        else:
            return _answer(request, query, body, view if view in VIEWS else "page")
    elif submitted:
        status = 422
    context = {"form": form, "unusable_use_cases": use_cases.unusable}
    return render(request, "gits/monitoring/report.html", context, status=status)


def _answer(
    request: HttpRequest, query: reports.ReportQuery, body: bytes, view: str
) -> HttpResponse:
    if view == "frame":
        return html_page(body)
    if view == "download":
        response = html_page(body)
        response["Content-Disposition"] = f'attachment; filename="{reports.file_name(query)}"'
        return response
    shown = request.GET.copy()
    shown.pop("view", None)
    context = {
        "title": reports.title(query),
        "window": reports.window_in_words(query),
        "query": query,
        "frame_url": f"?{shown.urlencode()}&view=frame",
        "download_url": f"?{shown.urlencode()}&view=download",
        "form_url": f"?{shown.urlencode()}",
    }
    return render(request, "gits/monitoring/report_page.html", context)
