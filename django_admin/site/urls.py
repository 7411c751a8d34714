"""URLs of the admin's own pages."""

from __future__ import annotations

from django.urls import path, re_path

from django_admin.site.views import algorithms, health, monitoring, retraining, services
from gits_common.registry import NAME_PATTERN

# queue_manager's names; anything else never reaches it.
NAME_BODY = NAME_PATTERN.removeprefix("^").removesuffix("$")
NAME = rf"(?P<name>{NAME_BODY})"

urlpatterns = [
    path("health", health.health, name="health"),
    path("algorithms/", algorithms.algorithm_list, name="algorithms"),
    path("algorithms/upload/", algorithms.algorithm_upload, name="algorithm_upload"),
    path("algorithms/compare/", algorithms.algorithm_compare, name="algorithm_compare"),
    re_path(rf"^algorithms/{NAME}/$", algorithms.algorithm_detail, name="algorithm"),
    re_path(
        rf"^algorithms/{NAME}/versions/(?P<version>[1-9][0-9]*)/delete/$",
        algorithms.algorithm_delete,
        name="algorithm_delete",
    ),
    re_path(
        rf"^algorithms/{NAME}/versions/(?P<version>[1-9][0-9]*)/file/$",
        algorithms.algorithm_download,
        name="algorithm_download",
    ),
    path("services/", services.service_list, name="services"),
    path("services/new/", services.service_new, name="service_new"),
    re_path(rf"^services/{NAME}/$", services.service_detail, name="service"),
    re_path(rf"^services/{NAME}/bind/$", services.service_bind, name="service_bind"),
    re_path(rf"^services/{NAME}/delete/$", services.service_delete, name="service_delete"),
    path("retraining/", retraining.job_list, name="retraining"),
    path("retraining/start/", retraining.job_start, name="retraining_start"),
    path("retraining/jobs/<int:job_id>/", retraining.job_detail, name="retraining_job"),
    path("retraining/jobs/<int:job_id>/promote/", retraining.job_promote, name="job_promote"),
    path("retraining/jobs/<int:job_id>/explain/", retraining.job_explain, name="job_explain"),
    path("retraining/promotions/", retraining.promotion_list, name="promotions"),
    re_path(
        rf"^retraining/services/(?P<service>{NAME_BODY})/rollback/$",
        retraining.service_rollback,
        name="service_rollback",
    ),
    path("retraining/explainers/", retraining.explainer_list, name="explainers"),
    path("retraining/explainers/<int:job_id>/", retraining.explainer_detail, name="explainer"),
    path(
        "retraining/explainers/<int:job_id>/page/",
        retraining.explainer_page,
        name="explainer_page",
    ),
    path("monitoring/reports/", monitoring.report, name="monitoring_report"),
]
