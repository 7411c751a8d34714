"""The admin's forms. Choices come from the APIs at the time the form is built."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.http import QueryDict

from django_admin.site.catalog import Algorithm
from django_admin.site.reports import REFERENCES, REPORT_KINDS
from gits_common.registry import NAME_PATTERN, NAME_RULE
from gits_common.retraining import DEFAULT_METRIC, METRICS, MODEL_NAMES
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
        """Refuse a file over the upload limit (DJANGO_MAX_UPLOAD_MB) before it goes
        anywhere; the message names the limit, not the setting."""
        upload: UploadedFile = self.cleaned_data["file"]
        limit_mb: int = settings.GITS_MAX_UPLOAD_MB
        if upload.size is not None and upload.size > limit_mb * 1024 * 1024:
            raise ValidationError(
                f"The file is {upload.size / 1024 / 1024:.1f} MB; the admin takes model files "
                f"of at most {limit_mb} MB. Nothing was uploaded."
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
    """A retraining job of one use case (retraining_api's POST /jobs): the choices are the
    use case's services, its task's metrics and the models PyCaret has for its task."""

    use_case = forms.CharField(widget=forms.HiddenInput)
    service = forms.ChoiceField(required=False, help_text="Whose model is the champion")
    models = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Models to compare",
        help_text="The best becomes the challenger; none ticked: retraining_api's default set",
    )
    metric = forms.ChoiceField(
        required=False, help_text="What the models are selected and compared on"
    )
    time_budget_seconds = forms.FloatField(
        required=False,
        min_value=1,
        max_value=24 * 3600,
        label="Time budget (seconds)",
        help_text="Stop comparing models after this long (empty: no limit)",
    )
    auto_promote = forms.BooleanField(
        required=False,
        label="Promote automatically",
        help_text="When the challenger beats the champion by the margin",
    )
    promote_margin = forms.FloatField(
        required=False,
        min_value=0,
        max_value=1,
        label="Margin",
        help_text="The relative improvement needed, e.g. 0.05 for 5% (empty: the default)",
    )

    def __init__(self, *args: Any, use_case: UseCase, services: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.use_case = use_case
        self.services = services
        task = use_case.task
        self.fields["use_case"].initial = use_case.name
        self.fields["service"].choices = service_choices(use_case.name, services)
        self.fields["service"].required = len(services) > 1  # retraining_api needs one named
        self.fields["models"].choices = [
            (model_id, f"{name} ({model_id})") for model_id, name in MODEL_NAMES[task].items()
        ]
        default = DEFAULT_METRIC[task]
        self.fields["metric"].choices = [("", f"{default} (the default for {task.value})")] + [
            (metric, f"{metric} ({'higher' if higher else 'lower'} is better)")
            for metric, higher in METRICS[task].items()
        ]

    def clean_use_case(self) -> str:
        """The use case the form was built for; a form of another one is refused."""
        name: str = self.cleaned_data["use_case"]
        if name != self.use_case.name:
            raise ValidationError(
                f"This form is for use case {self.use_case.name}, not {name}: choose the use "
                "case again."
            )
        return name

    def clean(self) -> dict[str, Any]:
        """Promoting automatically needs a service to promote to."""
        data: dict[str, Any] = super().clean() or {}
        if data.get("auto_promote") and not self.services:
            raise ValidationError(
                f"Promoting automatically needs a service, and no service uses "
                f"{self.use_case.name}: create one first, or untick it."
            )
        return data

    def request_body(self, requested_by: str) -> dict[str, Any]:
        """The body of retraining_api's POST /jobs."""
        data = self.cleaned_data
        return {
            "use_case": data["use_case"],
            "service": data["service"] or None,
            "models": data["models"] or None,
            "metric": data["metric"] or None,
            "time_budget_seconds": data["time_budget_seconds"],
            "auto_promote": data["auto_promote"],
            "promote_margin": data["promote_margin"],
            "requested_by": requested_by,
        }


def service_choices(use_case: str, services: list[str]) -> list[tuple[str, str]]:
    """The services a retraining of `use_case` may take its champion from: one of them
    must be named when there are several; without any, the challenger stands alone."""
    if not services:
        return [("", f"(none: no service uses {use_case}, so there is no champion)")]
    return [(s, s) for s in services]


class UseCaseFilter(forms.Form):
    """The use case a list is narrowed to: its `?use_case=`, kept in the URL."""

    use_case = forms.ChoiceField(required=False, label="Use case")

    def __init__(self, query: QueryDict, *, use_cases: Iterable[str | None], unknown: str) -> None:
        super().__init__(query if "use_case" in query else None)
        names = sorted({u for u in use_cases if u})
        self.fields["use_case"].choices = [("", "every use case")] + [(u, u) for u in names]
        # `unknown` says, with %(value)s, that the list holds nothing of that use case.
        self.fields["use_case"].error_messages["invalid_choice"] = unknown

    @property
    def asked(self) -> str | None:
        """The use case in the URL, valid or not (the list is narrowed to it either way:
        to nothing when no record has it)."""
        return self.data.get("use_case") or None

    @property
    def known(self) -> bool:
        """Whether the use case asked for is one of the choices (or none was asked)."""
        return not self.is_bound or self.is_valid()


class CompareForm(forms.Form):
    """Two versions ("name:version") whose stored metrics are shown side by side."""

    first = forms.ChoiceField(label="Version")
    second = forms.ChoiceField(label="against version")

    def __init__(self, *args: Any, algorithms: list[Algorithm], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.use_cases: dict[str, str | None] = {}
        groups: list[tuple[str, Any]] = []
        for algorithm in algorithms:
            options = [
                (f"{algorithm.name}:{v['version']}", f"{algorithm.name}: version {v['version']}")
                for v in algorithm.versions
                if algorithm.name is not None and v["version"] is not None
            ]
            self.use_cases |= {
                f"{algorithm.name}:{v['version']}": v["use_case"] for v in algorithm.versions
            }
            if options and algorithm.name is not None:
                groups.append((algorithm.name, options))
        self.fields["first"].choices = groups
        self.fields["second"].choices = groups

    def clean(self) -> dict[str, Any]:
        """Two different versions of the same use case: metrics of models of different
        use cases were measured on different data."""
        data: dict[str, Any] = super().clean() or {}
        first, second = data.get("first"), data.get("second")
        if first is None or second is None:
            return data
        if first == second:
            raise ValidationError("Choose two different versions.")
        one, two = self.use_cases.get(first), self.use_cases.get(second)
        if one != two:
            raise ValidationError(
                f"{first} belongs to use case {one or '(unknown)'} and {second} to "
                f"{two or '(unknown)'}: their metrics were measured on different data, so "
                "only versions of the same use case are compared."
            )
        return data

    def use_case(self) -> str | None:
        """The use case of the chosen versions."""
        return self.use_cases.get(self.cleaned_data["first"])


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
