"""The admin's forms. Choices come from the APIs at the time the form is built."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile

from django_admin.site.catalog import Algorithm
from django_admin.site.reports import REFERENCES, REPORT_KINDS
from gits_common.registry import NAME_PATTERN, NAME_RULE
from gits_common.schemas import UseCase

TABLES = [("production", "production"), ("testing", "testing"), ("training", "training")]


def name_field(label: str) -> forms.RegexField:
    """A name queue_manager accepts (it becomes a file and a queue name)."""
    return forms.RegexField(
        regex=NAME_PATTERN,
        label=label,
        max_length=100,
        help_text=NAME_RULE,
        error_messages={"invalid": f"Not a valid name: use {NAME_RULE}."},
    )


def version_choices(algorithms: list[Algorithm]) -> list[tuple[str, Any]]:
    """Grouped choices "name@latest" and "name@<version>" for every stored algorithm
    (versions queue_manager answered without a usable name or number cannot be chosen)."""
    groups: list[tuple[str, Any]] = []
    for algorithm in algorithms:
        if algorithm.name is None:
            continue
        options = [(f"{algorithm.name}@latest", f"{algorithm.name}: latest (follows uploads)")]
        options += [
            (f"{algorithm.name}@{v['version']}", f"{algorithm.name}: version {v['version']}")
            for v in algorithm.versions
            if v["version"] is not None
        ]
        groups.append((algorithm.name, options))
    return groups


def split_version(value: str) -> tuple[str, int | str]:
    """ "name@3" -> ("name", 3); "name@latest" -> ("name", "latest")."""
    name, _, version = value.rpartition("@")
    return name, int(version) if version.isdigit() else version


class UploadForm(forms.Form):
    """A model file and what queue_manager records with it."""

    file = forms.FileField(label="Model file", help_text="A PyCaret pipeline saved with save_model")
    name = name_field("Algorithm name")
    use_case = forms.ChoiceField(
        help_text="Task, features and target come from the use case's definition"
    )
    description = forms.CharField(
        required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 3})
    )

    def __init__(self, *args: Any, use_cases: list[UseCase], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["file"].help_text += f", at most {settings.GITS_MAX_UPLOAD_MB} MB"
        self.use_cases = {u.name: u for u in use_cases}
        self.fields["use_case"].choices = [
            (u.name, f"{u.name} ({u.task.value}, {len(u.features)} features)") for u in use_cases
        ]

    def clean_file(self) -> UploadedFile:
        """Refuse a file over DJANGO_MAX_UPLOAD_MB before it goes anywhere."""
        upload: UploadedFile = self.cleaned_data["file"]
        limit_mb: int = settings.GITS_MAX_UPLOAD_MB
        if upload.size is not None and upload.size > limit_mb * 1024 * 1024:
            raise ValidationError(
                f"The file is {upload.size / 1024 / 1024:.1f} MB; the limit is {limit_mb} MB "
                "(DJANGO_MAX_UPLOAD_MB). Nothing was uploaded."
            )
        return upload

    def chosen_use_case(self) -> UseCase:
        """The chosen use case's definition."""
        return self.use_cases[self.cleaned_data["use_case"]]


class BindForm(forms.Form):
    """A service and the algorithm version its workers use."""

    name = name_field("Service name")
    routing_key = forms.CharField(
        max_length=255, help_text="The routing key the service's messages are published with"
    )
    algorithm = forms.ChoiceField(label="Algorithm version")

    def __init__(self, *args: Any, algorithms: list[Algorithm], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["algorithm"].choices = version_choices(algorithms)


class RetrainForm(forms.Form):
    """A retraining job (retraining_api's POST /jobs)."""

    use_case = forms.ChoiceField()
    service = forms.ChoiceField(
        required=False, help_text="Whose model is the champion; empty: the use case's only service"
    )
    models = forms.CharField(
        required=False, help_text="PyCaret model ids, comma separated (empty: the default set)"
    )
    metric = forms.CharField(required=False, help_text="e.g. MAE, R2, Accuracy (empty: default)")
    time_budget_seconds = forms.FloatField(required=False, min_value=1, max_value=24 * 3600)
    auto_promote = forms.BooleanField(
        required=False, help_text="Promote when the challenger beats the champion by the margin"
    )
    promote_margin = forms.FloatField(required=False, min_value=0, max_value=1)

    def __init__(
        self, *args: Any, use_cases: list[str], services: list[str], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["use_case"].choices = [(u, u) for u in use_cases]
        self.fields["service"].choices = [("", "(the use case's service)")] + [
            (s, s) for s in services
        ]

    def request_body(self, requested_by: str) -> dict[str, Any]:
        """The body of retraining_api's POST /jobs."""
        data = self.cleaned_data
        models = [m.strip() for m in data["models"].split(",") if m.strip()]
        return {
            "use_case": data["use_case"],
            "service": data["service"] or None,
            "models": models or None,
            "metric": data["metric"].strip() or None,
            "time_budget_seconds": data["time_budget_seconds"],
            "auto_promote": data["auto_promote"],
            "promote_margin": data["promote_margin"],
            "requested_by": requested_by,
        }


class ExplainerForm(forms.Form):
    """An explainer dashboard of a stored model version."""

    algorithm = forms.ChoiceField(label="Model")
    data = forms.ChoiceField(choices=TABLES, help_text="The rows the dashboard explains")
    max_rows = forms.IntegerField(required=False, min_value=10, max_value=10_000)

    def __init__(self, *args: Any, algorithms: list[Algorithm], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["algorithm"].choices = version_choices(algorithms)

    def request_body(self, requested_by: str) -> dict[str, Any]:
        """The body of retraining_api's POST /explainers."""
        name, version = split_version(self.cleaned_data["algorithm"])
        body: dict[str, Any] = {
            "model_name": name,
            "model_version": version,
            "data": self.cleaned_data["data"],
            "requested_by": requested_by,
        }
        if self.cleaned_data["max_rows"]:
            body["max_rows"] = self.cleaned_data["max_rows"]
        return body


class ReportForm(forms.Form):
    """An Evidently report over a window of production rows."""

    use_case = forms.ChoiceField()
    kind = forms.ChoiceField(choices=list(REPORT_KINDS.items()), label="Report")
    reference = forms.ChoiceField(choices=list(REFERENCES.items()), label="Compared with")
    last = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=100_000,
        label="Newest rows",
        help_text="The newest N production rows (default 1000), or a time window below",
    )
    start = forms.DateTimeField(
        required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )
    end = forms.DateTimeField(
        required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )

    def __init__(self, *args: Any, use_cases: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["use_case"].choices = [(u, u) for u in use_cases]

    def clean(self) -> dict[str, Any]:
        """A window is the newest rows or a time range, not both."""
        data: dict[str, Any] = super().clean() or {}
        has_range = data.get("start") is not None or data.get("end") is not None
        if data.get("last") and has_range:
            raise ValidationError("Give either the newest rows or a time window, not both.")
        if data.get("start") and data.get("end") and data["start"] >= data["end"]:
            raise ValidationError("The window's start must be before its end.")
        return data
