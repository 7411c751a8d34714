"""Retraining through the admin against the real retraining_api: start a job, watch it,
compare champion and challenger, promote and roll back (queue_manager's binding follows),
and open the challenger's explainer dashboard."""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Iterator

import pytest
from django.test import Client
from joblib.externals.loky import get_reusable_executor

from gits_common.clients import rows_from_frame
from gits_common.schemas import UseCase
from gits_ml import modeling
from gits_ml.demo import PRODUCT_QUALITY, TARGET, DemoConfig, generate
from tests.django_admin.conftest import Platform, Retraining, point_admin_at, text, unique

pytestmark = pytest.mark.slow  # trains PyCaret models

DEMO = generate(DemoConfig(history_hours=800, production_minutes=3000))
JOB_SECONDS = 240


@dataclasses.dataclass(frozen=True)
class Served:
    """A demo use case with data, its first model as version 1, and a service using it."""

    use_case: UseCase
    service: str


@pytest.fixture(scope="module")
def served(platform: Platform, retraining: Retraining) -> Iterator[Served]:
    """The demo use case loaded, its champion uploaded and bound to a service."""
    point_admin_at(retraining_api=retraining.url)  # another module may have moved it
    use_case = PRODUCT_QUALITY.model_copy(update={"name": unique("djr")})
    truth = DEMO.ground_truth
    production = truth.drop(columns=[TARGET, "available_at"]).assign(prediction=0.0)
    labels = [
        {"message_id": m, "value": v} for m, v in zip(truth.message_id, truth[TARGET], strict=True)
    ]
    with platform.http("ml_data_api") as ml:
        ml.post("/ml_data_api/use_cases", json=use_case.model_dump(mode="json")).raise_for_status()
        base = f"/ml_data_api/use_cases/{use_case.name}"
        for table, frame in (
            ("training", DEMO.training),
            ("testing", DEMO.testing),
            ("production", production),
        ):
            rows = rows_from_frame(frame)
            ml.post(f"{base}/{table}/rows", json={"rows": rows}).raise_for_status()
        ml.post(f"{base}/labels", json={"labels": labels}).raise_for_status()
    champion, _ = modeling.train(use_case, DEMO.training, include=["lr"])
    # PyCaret leaves joblib's worker processes idling for minutes after training.
    get_reusable_executor().shutdown(wait=True)
    platform.upload(use_case.name, use_case, modeling.to_bytes(champion))
    service = unique("djr-service")
    platform.bind(service, use_case.name, 1)
    yield Served(use_case, service)
    with platform.http("queue_manager") as qm:
        qm.delete(f"/queue_manager/services/{service}")


def status_on(page: str) -> str:
    """The job status a user reads on a job page."""
    found = re.search(r'<span class="status status-(\w+)">', page)
    assert found is not None, page
    return found[1]


def wait_on_page(browser: Client, url: str) -> str:
    """Reload a job page, as its own refresh does, until the job is done; the last page."""
    deadline = time.monotonic() + JOB_SECONDS
    while time.monotonic() < deadline:
        page = text(browser.get(url))
        if status_on(page) in ("finished", "failed"):
            return page
        assert '<meta http-equiv="refresh"' in page  # it refreshes itself while running
        time.sleep(1)
    raise AssertionError(f"{url} still running after {JOB_SECONDS} s")


def test_retrain_compare_promote_and_roll_back(
    browser: Client, platform: Platform, served: Served
) -> None:
    name, service = served.use_case.name, served.service
    # Given the start form of the use case, offering its service
    form = text(browser.get("/retraining/start/", {"use_case": name}))
    assert name in form and service in form

    # When a job is started comparing ridge regression on MAE
    started = browser.post(
        "/retraining/start/",
        {"use_case": name, "service": service, "models": "ridge", "metric": "MAE"},
    )
    assert started.status_code == 302
    job_url = started["Location"]

    # Then its page shows progress until done, then champion against challenger
    page = wait_on_page(browser, job_url)
    assert status_on(page) == "finished", page
    assert "Champion against challenger" in page
    assert f"Champion {name}:1" in page
    assert "Linear Regression" in page and "Ridge Regression" in page
    mae = re.search(r'<tr class="decisive">\s*<td>MAE</td>\s*<td[^>]*>([\d.]+)</td>\s*<td', page)
    assert mae is not None, page
    assert '<meta http-equiv="refresh"' not in page

    # When the challenger is promoted
    promoted = text(browser.post(f"{job_url}promote/", follow=True))

    # Then the service uses version 2 in queue_manager, and the history shows who did it
    assert f"Promoted {service}: {name}:1 -> {name}:2." in promoted
    bound = platform.get("queue_manager", f"/queue_manager/services/{service}")
    assert bound["resolved_version"] == 2
    history = text(browser.get(f"/retraining/promotions/?service={service}"))
    assert "promote" in history and "operator" in history

    # When the service is rolled back, it uses version 1 again
    rolled = text(browser.post(f"/retraining/services/{service}/rollback/", follow=True))
    assert f"Rolled back {service}: {name}:2 -> {name}:1." in rolled
    bound = platform.get("queue_manager", f"/queue_manager/services/{service}")
    assert bound["resolved_version"] == 1

    # And a second rollback has nothing to go back to: retraining_api's reason is shown
    again = text(browser.post(f"/retraining/services/{service}/rollback/", follow=True))
    assert "retraining_api refused" in again and "nothing to roll back" in again


def test_the_explainer_dashboard_opens_through_the_admin(browser: Client, served: Served) -> None:
    # Given the explainer form, naming the model version and the rows to explain
    started = browser.post(
        "/retraining/explainers/",
        {"algorithm": f"{served.use_case.name}@1", "data": "testing", "max_rows": 50},
    )
    assert started.status_code == 302
    job_url = started["Location"]

    page = wait_on_page(browser, job_url)
    assert status_on(page) == "finished", page
    assert "Open the dashboard" in page

    assert "<dt>How</dt><dd>linear SHAP</dd>" in page  # the model is a linear regression

    dashboard = browser.get(f"{job_url}page/")
    assert dashboard.status_code == 200
    assert dashboard["Content-Type"].startswith("text/html")
    assert all(f in text(dashboard) for f in served.use_case.feature_names[:3])
    # with GITS's way back to the job and the list on top
    nav = text(dashboard).split('<nav id="gits-nav"', 1)[1].split("</nav>", 1)[0]
    assert f'href="{job_url}"' in nav and 'href="/retraining/explainers/"' in nav
    assert "Selected index: <b>None</b>" not in text(dashboard)
