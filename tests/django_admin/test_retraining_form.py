"""The retraining form offers choices, not free text: first the use case, then, for it,
its services, its task's metrics and the models PyCaret has for its task. It works
without script (a GET form, then the form for that use case), and the admin checks what
comes back before retraining_api is asked. No model is trained here."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from django.conf import settings
from django.test import Client

from gits_common.retraining import METRICS, MODEL_NAMES
from gits_common.schemas import Column, ColumnType, Task, UseCase
from tests.django_admin.conftest import FEATURES, Platform, point_admin_at, text, unique
from tests.django_admin.test_algorithms import words


def register(platform: Platform, use_case: UseCase) -> UseCase:
    """Define a use case in ml_data_api."""
    with platform.http("ml_data_api") as http:
        body = use_case.model_dump(mode="json")
        http.post("/ml_data_api/use_cases", json=body).raise_for_status()
    return use_case


@pytest.fixture(scope="module")
def use_cases(platform: Platform) -> dict[Task, UseCase]:
    """A use case of each task, defined in ml_data_api."""
    features = [Column(name=n) for n in FEATURES]
    targets = {
        Task.regression: Column(name="quality"),
        Task.classification: Column(name="grade", type=ColumnType.text),
        Task.anomaly: None,
    }
    return {
        task: register(
            platform,
            UseCase(
                name=unique(f"dj_{task.value[:4]}"),
                task=task,
                features=features,
                target=target,
                time_column="ts",
            ),
        )
        for task, target in targets.items()
    }


@pytest.fixture
def no_retraining_api(platform: Platform) -> Iterator[None]:
    """retraining_api out of reach (a form the admin refuses never gets that far), and
    the admin pointed back where it was afterwards."""
    before = settings.GITS_API_URLS["retraining_api"]
    point_admin_at(retraining_api="http://127.0.0.1:9")
    yield
    point_admin_at(retraining_api=before)


def options(page: str, field: str) -> list[str]:
    """The values a form field offers: a select's options or a group of checkboxes."""
    select = re.search(rf'<select name="{field}"[^>]*>(.*?)</select>', page, re.S)
    if select:
        return re.findall(r'<option value="([^"]*)"', select[1])
    return re.findall(rf'<input type="checkbox" name="{field}" value="([^"]*)"', page)


def test_the_use_case_comes_first_then_its_form(
    browser: Client, use_cases: dict[Task, UseCase]
) -> None:
    # Given several use cases: the start page asks for one, in a plain GET form
    first = text(browser.get("/retraining/start/"))
    assert '<form method="get"' in first and 'name="use_case"' in first
    assert all(u.name in options(first, "use_case") for u in use_cases.values())
    assert 'name="models"' not in first  # no form before the use case is known

    # When one is chosen, the form for it follows, naming its task
    regression = use_cases[Task.regression]
    page = text(browser.get("/retraining/start/", {"use_case": regression.name}))
    assert f"Start a retraining job of {regression.name}" in page
    assert f'<input type="hidden" name="use_case" value="{regression.name}"' in page


@pytest.mark.parametrize("task", list(Task))
def test_the_form_offers_the_tasks_models_and_metrics(
    browser: Client, use_cases: dict[Task, UseCase], task: Task
) -> None:
    page = text(browser.get("/retraining/start/", {"use_case": use_cases[task].name}))

    assert options(page, "models") == list(MODEL_NAMES[task])
    assert options(page, "metric") == ["", *METRICS[task]]
    assert MODEL_NAMES[task]["knn"] in page  # each model by PyCaret's name, with its id


def test_the_services_offered_are_the_use_cases_own(
    browser: Client, platform: Platform, use_cases: dict[Task, UseCase], broker
) -> None:
    # Given a regression use case with two services, and a service of another use case
    regression, classification = use_cases[Task.regression], use_cases[Task.classification]
    algorithm = unique("algo")
    platform.upload(algorithm, regression)
    mine = sorted([broker.service_name(), broker.service_name()])
    for service in mine:
        platform.bind(service, algorithm, 1)
    other = broker.service_name()
    platform.upload(classification.name, classification)
    platform.bind(other, classification.name, 1)

    regression_form = text(browser.get("/retraining/start/", {"use_case": regression.name}))
    other_form = text(browser.get("/retraining/start/", {"use_case": classification.name}))

    # Then each form offers only its use case's services (one must be named of two)
    assert options(regression_form, "service") == mine
    assert options(other_form, "service") == [other]


def test_choices_not_offered_are_refused_in_words_before_retraining_api(
    browser: Client, use_cases: dict[Task, UseCase], no_retraining_api: None
) -> None:
    regression = use_cases[Task.regression]
    # A classification metric and a model PyCaret does not have, for a regression
    response = browser.post(
        f"/retraining/start/?use_case={regression.name}",
        {"use_case": regression.name, "models": ["lr", "gpt"], "metric": "Accuracy"},
    )

    page = words(text(response))
    assert response.status_code == 422
    assert "gpt is not one of the available choices" in page
    assert "Accuracy is not one of the available choices" in page
    assert "not answering" not in page and "not reachable" not in page  # never sent


def test_promoting_automatically_without_a_service_is_refused_in_words(
    browser: Client, use_cases: dict[Task, UseCase], no_retraining_api: None
) -> None:
    # The anomaly use case has no service: nothing to promote to
    name = use_cases[Task.anomaly].name
    response = browser.post(
        f"/retraining/start/?use_case={name}", {"use_case": name, "auto_promote": "on"}
    )

    assert response.status_code == 422
    assert f"Promoting automatically needs a service, and no service uses {name}" in text(response)


def test_an_unknown_use_case_is_said_in_words(browser: Client) -> None:
    response = browser.get("/retraining/start/", {"use_case": "no_such_case"})

    assert response.status_code == 404
    assert "There is no use case named no_such_case to retrain" in text(response)


def test_the_jobs_list_is_filtered_by_use_case_in_the_url(
    browser: Client, use_cases: dict[Task, UseCase], admin_urls: Platform, retraining
) -> None:
    name = use_cases[Task.anomaly].name

    page = text(browser.get("/retraining/", {"use_case": name}))
    unknown = words(text(browser.get("/retraining/", {"use_case": "no_such_case"})))

    assert re.search(rf'<option value="{name}" selected>', page), page
    assert f"No retraining job of use case {name}." in page
    assert "There is no use case named no_such_case." in unknown


def test_a_refusal_of_retraining_api_is_shown_in_words(
    browser: Client, use_cases: dict[Task, UseCase], retraining
) -> None:
    # Given a use case without data (and no service): the form is fine, but retraining_api
    # refuses to train on nothing
    name = use_cases[Task.anomaly].name

    response = browser.post(f"/retraining/start/?use_case={name}", {"use_case": name})

    # Then its reason is on the form, in words: no status, no setting's name
    page = words(text(response))
    assert response.status_code == 422
    assert f"too little data: use case {name} has 0 training rows" in page
    assert "nothing was changed" in page
    assert "422" not in page and "RETRAINING_MIN_TRAINING_ROWS" not in page
