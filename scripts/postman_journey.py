"""What the Postman collection does, in order: the data it sends and what it checks.

A use case of its own (the demo's definition under another name, never the demo's
`product_quality` nor its service) is registered and filled, a model trained on the same
rows is uploaded and bound to a service of its own, jobs are recorded, monitoring and
retraining read and act on it, and the last requests delete what the first ones made.

Each `Step` names one OpenAPI route; `scripts/postman.py` turns it into a request with
the route's parameters, the role's token and a test script. Checks are JavaScript
statements run in Postman's sandbox, where `v(name)` is a variable's value and `json()`
the response body.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cache
from typing import Any

import numpy as np
import pandas as pd

from gits_common.clients import rows_from_frame
from gits_common.schemas import Task
from gits_ml.demo import FEATURES, PRODUCT_QUALITY, TARGET, DemoConfig, generate, quality
from gits_ml.demos import DEMOS, IN_SPEC, OFF_SPEC

USE_CASE = PRODUCT_QUALITY.model_copy(
    update={"name": "postman_quality", "description": "The Postman collection's own use case"}
)
# Collection variables: a user points the collection elsewhere by changing them.
VARIABLES = {
    "use_case": USE_CASE.name,
    "service": "postman_quality_service",
    "extra_service": "postman_quality_extra",
    "routing_key": "gits.postman.quality",
    "algorithm": "postman_quality",
    "algorithm_version": "1",
    "table": "production",
    "report_kind": "data_drift",
    "alert_id": "1",
    "message_id": "postman-job-1",
    "retraining_job_id": "1",
    "explainer_job_id": "1",
    "class_use_case": "postman_grade",
    "anomaly_use_case": "postman_pump",
    "task_job_id": "1",
    "task_algorithm_version": "1",
}
MODEL_FILE = "var/postman/model.pkl"  # relative to newman's --working-dir, the checkout
# Tables as small as monitoring allows at its defaults: a history point needs 500
# production rows and 500 training rows older than them (MONITORING_MIN_WINDOW_ROWS);
# retraining needs 100 training rows and 20 held out.
PRODUCTION_ROWS = 510  # the last one goes through the original insert route
DATA = DemoConfig(
    seed=2025,
    start=datetime(2025, 1, 1, tzinfo=UTC),
    history_hours=600,
    test_fraction=0.12,
    production_minutes=PRODUCTION_ROWS,
)
WINDOW = {"start": "2000-01-01T00:00:00Z", "end": "2100-01-01T00:00:00Z"}  # every row
POLL_SECONDS, MAX_POLLS = 1, 600


@dataclass(frozen=True)
class Step:
    """One request of the journey: a route, what it sends, what its answer must be."""

    method: str
    path: str
    name: str
    status: tuple[int, ...]
    checks: dict[str, str] = field(default_factory=dict)  # test name -> JS statement
    body: str | None = None  # raw JSON text ({{variables}} allowed)
    form: dict[str, str] = field(default_factory=dict)  # multipart text fields
    query: dict[str, str] = field(default_factory=dict)
    path_values: dict[str, str] = field(default_factory=dict)  # instead of the variable
    prerequest: tuple[str, ...] = ()
    until: str | None = None  # JS condition: repeat the request until it holds
    api: str = ""  # for the routes every API has (/health); else the path's first part


@cache
def tables() -> dict[str, pd.DataFrame]:
    """The collection's training, testing and production rows (production with the
    model's stand-in predictions), rounded so that their JSON stays short."""
    demo = generate(DATA)
    production = demo.production.copy()
    truth = quality(production, np.random.default_rng(DATA.seed), DATA.noise_sd)
    error = np.random.default_rng(DATA.seed + 1).normal(0, 8, len(truth))  # a model's miss
    production["prediction"] = (truth + error).round(2)
    production[TARGET] = truth
    columns = {**{c: 1 for c in FEATURES}, TARGET: 2, "prediction": 2}
    return {
        "training": demo.training.round(columns),
        "testing": demo.testing.round(columns),
        "production": production.round(columns),
    }


def rows(table: str) -> list[dict[str, Any]]:
    """A table's rows as the API takes them (production rows without their label)."""
    frame = tables()[table]
    if table == "production":
        frame = frame.drop(columns=[TARGET])
    return rows_from_frame(frame)


def _compact(key: str, items: list[dict[str, Any]]) -> str:
    """A JSON object whose list holds one item a line: readable in Postman, short in git."""
    lines = ",\n".join(f"    {json.dumps(item, separators=(',', ':'))}" for item in items)
    return f"{{\n  {json.dumps(key)}: [\n{lines}\n  ]\n}}"


def _body(value: Any) -> str:
    return json.dumps(value, indent=2)


def _is(expression: str, expected: str) -> str:
    return f"pm.expect({expression}).to.eql({expected});"


def _has(expression: str, expected: str) -> str:
    return f"pm.expect({expression}).to.include({expected});"


def _each(items: str, item_field: str, chain: str) -> str:
    """A check of one field of every item of a list, `chain` as in `pm.expect(...).<chain>`."""
    return f"{items}.forEach((x) => pm.expect(x.{item_field}).{chain});"


def _save(variable: str, expression: str) -> str:
    return f'pm.collectionVariables.set("{variable}", String({expression}));'


def _done(status: str) -> str:
    return f'!["queued", "running"].includes({status})'


def _delete_rows(table: str, count: int) -> Step:
    return Step(
        "DELETE",
        "/ml_data_api/use_cases/{name}/{table}/rows",
        f"Delete the {table} rows",
        (200,),
        {f"deletes the {table} rows": f"pm.expect(json().deleted).to.be.at.least({count});"},
        query=WINDOW,
        path_values={"table": table},
    )


def _insert_rows(table: str) -> Step:
    count = len(rows(table)) - (1 if table == "production" else 0)
    return Step(
        "POST",
        "/ml_data_api/use_cases/{name}/{table}/rows",
        f"Insert the {table} rows",
        (201,),
        {"stores every row once": _is("json().inserted + json().skipped", str(count))},
        body=_compact("rows", rows(table)[:count]),
        path_values={"table": table},
    )


def _health(api: str) -> Step:
    return Step(
        "GET", "/health", f"{api} is up", (200,), {"says ok": _is("json().status", '"ok"')}, api=api
    )


def data_steps() -> list[Step]:
    """ml_data_api: the use case and its rows."""
    production = rows("production")
    labels = [
        {"message_id": row["message_id"], "value": value}
        for row, value in zip(
            production[:-1:2], tables()["production"][TARGET][:-1:2], strict=False
        )
    ]
    return [
        _health("ml_data_api"),
        Step(
            "POST",
            "/ml_data_api/use_cases",
            "Register the use case",
            (200, 201),
            {
                "answers the use case": _is("json().use_case.name", 'v("use_case")'),
                "has its three tables": _is(
                    "Object.keys(json().tables).sort()", '["production", "testing", "training"]'
                ),
            },
            body=_body(
                {**USE_CASE.model_dump(mode="json", exclude_none=True), "name": "{{use_case}}"}
            ),
        ),
        Step(
            "GET",
            "/ml_data_api/use_cases",
            "List the use cases",
            (200,),
            {"lists the use case": _has("json().map((u) => u.use_case.name)", 'v("use_case")')},
        ),
        Step(
            "GET",
            "/ml_data_api/use_cases/{name}",
            "Read the use case",
            (200,),
            {
                "has the target": _is("json().use_case.target.name", f'"{TARGET}"'),
                "has the features": _is("json().use_case.features.length", str(len(FEATURES))),
            },
        ),
        _insert_rows("training"),
        _insert_rows("testing"),
        _insert_rows("production"),
        Step(
            "POST",
            "/ml_data_api/insert_data/",
            "Insert one production row the original way",
            (201,),
            {"stores the row once": _is("json().inserted + json().skipped", "1")},
            body=_body({"table": "production", "use_case": "{{use_case}}", "data": production[-1]}),
        ),
        Step(
            "POST",
            "/ml_data_api/use_cases/{name}/labels",
            "Attach labels to production rows",
            (200,),
            {
                "labels every row": _is("json().labelled", str(len(labels))),
                "knows every message": _is("json().unknown", "[]"),
            },
            body=_compact("labels", labels),
        ),
        Step(
            "GET",
            "/ml_data_api/use_cases/{name}/counts",
            "Count the rows",
            (200,),
            {
                "counts the testing rows": _is("json().testing", str(len(rows("testing")))),
                "counts the production rows": _is("json().production", str(len(production))),
                "counts the training rows and the labelled": "pm.expect(json().training)"
                f".to.be.at.least({len(rows('training'))});",
            },
        ),
        Step(
            "GET",
            "/ml_data_api/use_cases/{name}/{table}/rows",
            "Read the newest rows",
            (200,),
            {
                "answers the newest five": _is("json().rows.length", "5"),
                "has their predictions": _each("json().rows", "prediction", "to.be.a('number')"),
            },
            query={"last": "5"},
        ),
    ]


def model_steps() -> list[Step]:
    """queue_manager: the model file, its versions and the services bound to it."""
    binding = {"routing_key": "{{routing_key}}", "algorithm_name": "{{algorithm}}"}
    return [
        _health("queue_manager"),
        Step(
            "GET",
            "/",
            "queue_manager says who it is",
            (200,),
            {"names itself": _has("json().message", '"queue manager"')},
            api="queue_manager",
        ),
        Step(
            "POST",
            "/queue_manager/algorithms",
            "Upload the model",
            (201,),
            {
                "is a version of the algorithm": _is("json().name", 'v("algorithm")'),
                "passed the check": _is(
                    "json().check.features.sort()", json.dumps(sorted(FEATURES))
                ),
                "keeps the version and checksum": _save("algorithm_version", "json().version")
                + _save("sha256", "json().sha256"),
            },
            form={
                "name": "{{algorithm}}",
                "use_case": "{{use_case}}",
                "task": USE_CASE.task.value,
                "features": json.dumps(FEATURES),
                "description": "Uploaded by the Postman collection",
            },
        ),
        Step(
            "GET",
            "/queue_manager/algorithms",
            "List the algorithm's versions",
            (200,),
            {
                "lists the version": _has(
                    "json().map((a) => a.version)", 'Number(v("algorithm_version"))'
                )
            },
            query={"name": "{{algorithm}}"},
        ),
        Step(
            "GET",
            "/queue_manager/algorithms/{name}/versions/{version}",
            "Read the version",
            (200,),
            {
                "is the upload": _is("json().sha256", 'v("sha256")'),
                "is of the use case": _is("json().use_case", 'v("use_case")'),
            },
        ),
        Step(
            "GET",
            "/queue_manager/algorithms/{name}/versions/{version}/file",
            "Download the model file",
            (200,),
            {
                "is the file uploaded": _is(
                    'pm.response.headers.get("X-Checksum-SHA256")', 'v("sha256")'
                ),
                "is not empty": "pm.expect(pm.response.responseSize).to.be.above(1000);",
            },
        ),
        Step(
            "PUT",
            "/queue_manager/services/{name}",
            "Bind the service",
            (200, 201),
            {
                "uses the upload": _is("json().resolved_version", 'Number(v("algorithm_version"))'),
                "listens on the routing key": _is("json().routing_key", 'v("routing_key")'),
            },
            body=_body({**binding, "algorithm_version": "latest", "updated_by": "postman"}),
        ),
        Step(
            "POST",
            "/queue_manager/services",
            "Create a second service",
            (201,),
            {"is created": _is("json().name", 'v("extra_service")')},
            # Bound to the upload itself: a version registered later must not move it.
            body='{\n  "name": "{{extra_service}}",\n  "routing_key": "{{routing_key}}.extra",\n'
            '  "algorithm_name": "{{algorithm}}",\n  "algorithm_version": {{algorithm_version}}\n}',
        ),
        Step(
            "GET",
            "/queue_manager/services",
            "List the services",
            (200,),
            {
                "lists both": "const names = json().map((s) => s.name);"
                ' pm.expect(names).to.include(v("service")).and.to.include(v("extra_service"));'
            },
        ),
        Step(
            "GET",
            "/queue_manager/services/{name}",
            "Read the service",
            (200,),
            {
                "uses the algorithm": _is("json().algorithm_name", 'v("algorithm")'),
                "is of the use case": _is("json().use_case", 'v("use_case")'),
            },
        ),
        Step(
            "PUT",
            "/queue_manager/services/{name}/model_status",
            "Report the model usable",
            (200,),
            {"shows the report": _is("json().model_status.usable", "true")},
            body='{\n  "algorithm_name": "{{algorithm}}",\n  "version": {{algorithm_version}},\n'
            '  "usable": true,\n  "worker": "postman"\n}',
        ),
        Step(
            "GET",
            "/queue_manager/get_services",
            "Find the service the original way",
            (200,),
            {"finds it alone": _is("json().map((s) => s.name)", '[v("service")]')},
            query={"service_name": "{{service}}"},
        ),
        Step(
            "GET",
            "/queue_manager/get_algorithms",
            "List every algorithm the original way",
            (200,),
            {"lists the algorithm": _has("json().map((a) => a.name)", 'v("algorithm")')},
        ),
    ]


def _job(suffix: str, **extra: Any) -> dict[str, Any]:
    return {
        "message_id": "{{message_id}}" + suffix,
        "service": "{{service}}",
        "payload": {"features": {"T_data_1_1": 242.0}},
        "routing_key": "{{routing_key}}",
        "worker": "postman",
        **extra,
    }


def job_steps() -> list[Step]:
    """queue_manager: jobs as workers record them."""
    finished = {
        "last_status": "finished",
        "result": 412.5,
        "model_version": "{{algorithm}}:{{algorithm_version}}",
    }
    return [
        Step(
            "POST",
            "/queue_manager/jobs",
            "Create a job",
            (201,),
            {
                "is the message's job": _is("json().message_id", 'v("message_id")'),
                "is processing": _is("json().last_status", '"processing"'),
            },
            body=_body(_job("")),
            prerequest=('pm.collectionVariables.set("message_id", `postman-${Date.now()}`);',),
        ),
        Step(
            "PATCH",
            "/queue_manager/jobs/{service}/{message_id}",
            "Finish the job",
            (200,),
            {
                "is finished": _is("json().last_status", '"finished"'),
                "has the result": _is("json().result", "412.5"),
            },
            body=_body(finished),
        ),
        Step(
            "GET",
            "/queue_manager/jobs/{service}/{message_id}",
            "Read the job",
            (200,),
            {
                "is finished": _is("json().last_status", '"finished"'),
                "is the service's": _is("json().service", 'v("service")'),
            },
        ),
        Step(
            "POST",
            "/queue_manager/jobs/batch",
            "Create two jobs at once",
            (200,),
            {
                "creates both": _is(
                    "json().jobs.map((j) => j.last_status)", '["processing", "processing"]'
                )
            },
            body=_body({"jobs": [_job("-b1"), _job("-b2")]}),
        ),
        Step(
            "PATCH",
            "/queue_manager/jobs/batch",
            "Finish both jobs at once",
            (200,),
            {
                "finishes both": _is(
                    "json().jobs.map((j) => j.last_status)", '["finished", "finished"]'
                )
            },
            body=_body(
                {
                    "jobs": [
                        {**finished, "service": "{{service}}", "message_id": "{{message_id}}" + s}
                        for s in ("-b1", "-b2")
                    ]
                }
            ),
        ),
        Step(
            "PUT",
            "/queue_manager/jobs/batch",
            "Record a finished job",
            (200,),
            {"records it": _is("json().recorded", "1")},
            body=_body({"jobs": [_job("-r1", **finished)]}),
        ),
        Step(
            "GET",
            "/queue_manager/jobs",
            "List the service's jobs",
            (200,),
            {
                "lists the four": "pm.expect(json().length).to.be.at.least(4);",
                "only the service's": _each("json()", "service", 'to.eql(v("service"))'),
            },
            query={"service": "{{service}}", "limit": "10"},
        ),
        Step(
            "GET",
            "/queue_manager/jobs/counts",
            "Count the service's jobs",
            (200,),
            {"counts the finished": "pm.expect(json().finished).to.be.at.least(4);"},
            query={"service": "{{service}}"},
        ),
    ]


def monitoring_steps() -> list[Step]:
    """monitoring_api: thresholds, a report, a history point, alerts."""
    return [
        _health("monitoring_api"),
        Step(
            "PUT",
            "/monitoring_api/use_cases/{name}/thresholds",
            "Set the thresholds",
            (200,),
            # A drift share at or above 0 always alerts: the journey gets an alert to
            # acknowledge.
            {"keeps them": _is("json().drift_share", "0")},
            body=_body({"drift_share": 0, "performance_drop": 0.2}),
        ),
        Step(
            "GET",
            "/monitoring_api/use_cases/{name}/thresholds",
            "Read the thresholds",
            (200,),
            {"are the ones set": _is("[json().drift_share, json().performance_drop]", "[0, 0.2]")},
        ),
        Step(
            "GET",
            "/monitoring_api/use_cases/{name}/reports/{kind}",
            "Report on the production rows",
            (200,),
            {
                "is the report asked for": _is(
                    "[json().use_case, json().kind]", '[v("use_case"), v("report_kind")]'
                ),
                "compares every production row": _is("json().current.rows", str(PRODUCTION_ROWS)),
            },
            query={"last": "1000"},
        ),
        Step(
            "POST",
            "/monitoring_api/use_cases/{name}/history/run",
            "Take a history point now",
            (200,),
            {
                "looks at labelled production rows": "pm.expect(json().labelled_rows)"
                ".to.be.above(0).and.at.most(json().rows);",
                "has values": "pm.expect(json().values).to.not.be.empty;",
            },
        ),
        Step(
            "GET",
            "/monitoring_api/use_cases/{name}/history",
            "Read the drift share history",
            (200,),
            {"has the point": "pm.expect(json().values).to.not.be.empty;"},
            query={"metric": "drift_share"},
        ),
        Step(
            "GET",
            "/monitoring_api/use_cases/{name}/alerts",
            "Read the alerts",
            (200,),
            {
                "are the use case's": _each("json()", "use_case", 'to.eql(v("use_case"))'),
                # the newest drift share alert (this run's, or within its cool-down an
                # earlier run's): the one to acknowledge
                "keeps the drift share alert": _save(
                    "alert_id",
                    'json().filter((a) => a.metric === "drift_share").pop().id',
                ),
            },
        ),
        Step(
            "GET",
            "/monitoring_api/use_cases/{name}/history/latest",
            "Read the newest history point",
            (200,),
            {"has its drift share": _has("json().values.map((x) => x.metric)", '"drift_share"')},
        ),
        Step(
            "GET",
            "/monitoring_api/alerts",
            "Read every open alert",
            (200,),
            {"are open": _each("json()", "acknowledged_by", "to.be.null")},
        ),
        Step(
            "POST",
            "/monitoring_api/use_cases/{name}/alerts/{alert_id}/acknowledge",
            "Acknowledge the alert",
            (200,),
            {
                "says who": _is("json().acknowledged_by", '"postman"'),
                "says when": "pm.expect(json().acknowledged_at).to.be.a('string');",
            },
            body=_body({"by": "postman"}),
        ),
    ]


def _poll(job_path: str, name: str, variable: str, *, finished: str = "finished") -> Step:
    return Step(
        "GET",
        job_path,
        name,
        (200,),
        {
            "is the job": _is("json().id", f'Number(v("{variable}"))'),
            f"has {finished}": _is("[json().status, json().error]", f'["{finished}", null]'),
        },
        until=_done("json().status"),
    )


def _retrain(name: str) -> Step:
    return Step(
        "POST",
        "/retraining_api/jobs",
        name,
        (202,),
        {
            "is queued for the service": _is("json().service", 'v("service")'),
            "keeps its id": _save("retraining_job_id", "json().id"),
        },
        body=_body(
            {
                "use_case": "{{use_case}}",
                "service": "{{service}}",
                "models": ["lr"],
                "metric": "MAE",
                "auto_promote": False,
                "requested_by": "postman",
            }
        ),
    )


def retraining_steps() -> list[Step]:
    """retraining_api: retrain, promote, roll back, explain."""
    return [
        _health("retraining_api"),
        _retrain("Start retraining"),
        _poll("/retraining_api/jobs/{job_id}", "Wait for the retraining job", "retraining_job_id"),
        Step(
            "GET",
            "/retraining_api/jobs",
            "List the use case's retraining jobs",
            (200,),
            {"lists the job": _has("json().map((j) => j.id)", 'Number(v("retraining_job_id"))')},
            query={"use_case": "{{use_case}}"},
        ),
        Step(
            "POST",
            "/retraining_api/jobs/{job_id}/promote",
            "Promote the challenger",
            (201,),
            {
                "promotes on the service": _is(
                    "[json().action, json().service]", '["promote", v("service")]'
                ),
                "is the job's": _is("json().job_id", 'Number(v("retraining_job_id"))'),
            },
            body=_body({"requested_by": "postman"}),
        ),
        Step(
            "GET",
            "/retraining_api/promotions",
            "List the service's promotions",
            (200,),
            {"newest is the promotion": _is("json()[0].action", '"promote"')},
            query={"service": "{{service}}"},
        ),
        Step(
            "POST",
            "/retraining_api/services/{name}/rollback",
            "Roll the service back",
            (201,),
            {"rolls back": _is("[json().action, json().service]", '["rollback", v("service")]')},
            body=_body({"requested_by": "postman"}),
        ),
        _retrain("Start a second retraining"),
        _poll(
            "/retraining_api/jobs/{job_id}", "Wait for the second retraining", "retraining_job_id"
        ),
        Step(
            "POST",
            "/retraining_api/jobs/{job_id}/register",
            "Register the second challenger",
            (201,),
            {
                "is a new version of the algorithm": _is("json().name", 'v("algorithm")')
                + ' pm.expect(json().version).to.be.above(Number(v("algorithm_version")));',
                "binds no service": _is("json().services", "[]"),
            },
            body=_body({"requested_by": "postman"}),
        ),
        Step(
            "POST",
            "/retraining_api/explainers",
            "Start an explainer dashboard",
            (200, 202),
            {
                "is the model's": _is("json().use_case", 'v("use_case")'),
                "keeps its id": _save("explainer_job_id", "json().id"),
            },
            body='{\n  "model_name": "{{algorithm}}",\n  "model_version": {{algorithm_version}},\n'
            '  "data": "testing",\n  "requested_by": "postman"\n}',
        ),
        _poll("/retraining_api/explainers/{job_id}", "Wait for the explainer", "explainer_job_id"),
        Step(
            "GET",
            "/retraining_api/explainers",
            "List the use case's explainers",
            (200,),
            {"lists the job": _has("json().map((j) => j.id)", 'Number(v("explainer_job_id"))')},
            query={"use_case": "{{use_case}}"},
        ),
        Step(
            "GET",
            "/retraining_api/explainers/{job_id}/html",
            "Open the explainer dashboard",
            (200,),
            {"is a page": _has('pm.response.headers.get("Content-Type")', '"text/html"')},
        ),
        Step(
            "GET",
            "/retraining_api/get_explainer_dashboard",
            "Open the latest model's dashboard the original way",
            (200, 202),
            {
                "is the page once built": _has(
                    'pm.response.headers.get("Content-Type")', '"text/html"'
                )
            },
            query={
                "model_name": "{{algorithm}}",
                "config_name": "{{use_case}}",
                "evaluate_on": "testing",
            },
            until="pm.response.code !== 202",
        ),
    ]


# --- Classification and anomaly detection: one use case of each, from the demos ---

TASK_DATA = DemoConfig(
    seed=2025,
    start=datetime(2025, 1, 1, tzinfo=UTC),
    history_hours=300,
    test_fraction=0.25,
    production_minutes=150,
    ground_truth_every_minutes=1,
)
# (demo, description, its data): the anomaly use case's testing and production rows each
# hold two injected anomalies with this seed (a threshold is chosen on the first, and the
# models are scored on the second).
TASK_USE_CASES = {
    "class_use_case": ("quality_class", "Postman's classification use case", TASK_DATA),
    "anomaly_use_case": (
        "sensor_anomaly",
        "Postman's anomaly use case",
        replace(TASK_DATA, history_hours=1000, test_fraction=0.6, production_minutes=400),
    ),
}


@cache
def task_tables(variable: str) -> dict[str, pd.DataFrame]:
    """A task use case's training, testing and production rows, production with the
    predictions of a stand-in model (right nine times in ten, with its score) and the
    truth kept for the labels."""
    demo_name, _, config = TASK_USE_CASES[variable]
    demo = DEMOS[demo_name]
    data = demo.generate(config)
    rng = np.random.default_rng(TASK_DATA.seed)
    production = data.production.merge(
        data.ground_truth[["message_id", demo.target]], on="message_id", how="left"
    )
    # (the demos label all but the last reading: it stays unlabelled, as a new one would)
    truth = production[demo.target].fillna(0 if demo.use_case.task is Task.anomaly else IN_SPEC)
    wrong = rng.random(len(production)) < 0.1
    if demo.use_case.task is Task.classification:
        flipped = truth.map({IN_SPEC: OFF_SPEC, OFF_SPEC: IN_SPEC})
        production["prediction"] = truth.where(~wrong, flipped)
        production["prediction_score"] = rng.uniform(0.55, 0.99, len(production)).round(3)
    else:
        production["prediction"] = truth.where(~wrong, 1 - truth).astype(int)
        production["prediction_score"] = (
            production["prediction"] * 8 + rng.normal(3, 1, len(production))
        ).round(3)
    production["model_version"] = "postman_stand_in:1"
    return {"training": data.training, "testing": data.testing, "production": production}


def _task_rows(variable: str, table: str) -> list[dict[str, Any]]:
    frame = task_tables(variable)[table]
    target = DEMOS[TASK_USE_CASES[variable][0]].target
    return rows_from_frame(frame.drop(columns=[target]) if table == "production" else frame)


def _task_use_case_steps(variable: str) -> list[Step]:
    """Register a task's use case, fill its tables, label its predictions."""
    demo_name, description, _ = TASK_USE_CASES[variable]
    demo = DEMOS[demo_name]
    name = {"name": f"{{{{{variable}}}}}"}
    task = demo.use_case.task.value
    definition = demo.use_case.model_dump(mode="json", exclude_none=True)
    production = task_tables(variable)["production"]
    labelled = production[production[demo.target].notna()]
    labels = [
        {"message_id": mid, "value": value}
        for mid, value in zip(labelled["message_id"], labelled[demo.target].tolist(), strict=True)
    ]
    inserts = [
        Step(
            "POST",
            "/ml_data_api/use_cases/{name}/{table}/rows",
            f"Insert the {task} {table} rows",
            (201,),
            {
                "stores every row once": _is(
                    "json().inserted + json().skipped", str(len(_task_rows(variable, table)))
                )
            },
            body=_compact("rows", _task_rows(variable, table)),
            path_values={**name, "table": table},
        )
        for table in ("training", "testing", "production")
    ]
    return [
        Step(
            "POST",
            "/ml_data_api/use_cases",
            f"Register the {task} use case",
            (200, 201),
            {"is of the task": _is("json().use_case.task", f'"{task}"')},
            body=_body({**definition, "name": f"{{{{{variable}}}}}", "description": description}),
        ),
        *inserts,
        Step(
            "POST",
            "/ml_data_api/use_cases/{name}/labels",
            f"Label the {task} predictions",
            (200,),
            {"labels every row": _is("json().labelled", str(len(labels)))},
            body=_compact("labels", labels),
            path_values=name,
        ),
    ]


def task_steps() -> list[Step]:
    """Classification and anomaly detection: each task's use case, its monitoring
    answers, and a retraining with the task's options (tuning, an ensemble and SMOTE for
    the classifier; the threshold chosen on labelled rows for the anomaly model)."""
    grade, pump = {"name": "{{class_use_case}}"}, {"name": "{{anomaly_use_case}}"}
    window = {"last": "1000"}
    return [
        *_task_use_case_steps("class_use_case"),
        *_task_use_case_steps("anomaly_use_case"),
        Step(
            "GET",
            "/monitoring_api/use_cases/{name}/classification",
            "Classification report",
            (200,),
            {
                "has the confusion matrix": _is(
                    "json().confusion_matrix.labels", json.dumps([IN_SPEC, OFF_SPEC])
                ),
                "names the minority class positive": _is("json().positive_class", f'"{OFF_SPEC}"'),
                "looks at labelled rows": "pm.expect(json().labelled_rows).to.be.above(0);",
            },
            query=window,
            path_values=grade,
        ),
        Step(
            "GET",
            "/monitoring_api/use_cases/{name}/anomalies",
            "Anomaly rate and events",
            (200,),
            {
                "has flagged events": "pm.expect(json().events).to.not.be.empty;",
                "has a rate per bucket": "pm.expect(json().rate).to.not.be.empty;",
                "judges the flags on labels": "pm.expect(json().realised.recall).to.be.above(0.5);",
            },
            query={**window, "bucket_seconds": "600"},
            path_values=pump,
        ),
        Step(
            "GET",
            "/monitoring_api/use_cases/{name}/performance/estimated",
            "Estimated performance beside the realised",
            (200,),
            {"says how or why not": "pm.expect(json().method || json().reason).to.be.ok;"},
            query=window,
            path_values=grade,
        ),
        Step(
            "POST",
            "/retraining_api/jobs",
            "Retrain the classifier tuned, blended and balanced",
            (202,),
            {"keeps its id": _save("task_job_id", "json().id")},
            body=_body(
                {
                    "use_case": "{{class_use_case}}",
                    "models": ["lr", "ridge"],
                    "metric": "F1",
                    "tune": {"trials": 2, "time_budget_seconds": 60},
                    "ensemble": "blend",
                    "fix_imbalance": True,
                    "requested_by": "postman",
                }
            ),
        ),
        Step(
            "GET",
            "/retraining_api/jobs/{job_id}",
            "Wait for the classifier's retraining",
            (200,),
            {
                "has finished": _is("[json().status, json().error]", '["finished", null]'),
                "was tuned and blended": _is("json().result.ensemble.method", '"blend"')
                + " pm.expect(json().result.tuning.trials).to.be.at.least(1);",
            },
            path_values={"job_id": "{{task_job_id}}"},
            until=_done("json().status"),
        ),
        Step(
            "POST",
            "/retraining_api/jobs",
            "Retrain the anomaly model",
            (202,),
            {"keeps its id": _save("task_job_id", "json().id")},
            body=_body(
                {"use_case": "{{anomaly_use_case}}", "models": ["mcd"], "requested_by": "postman"}
            ),
        ),
        Step(
            "GET",
            "/retraining_api/jobs/{job_id}",
            "Wait for the anomaly model's retraining",
            (200,),
            {
                "has finished": _is("[json().status, json().error]", '["finished", null]'),
                "chose a threshold": "pm.expect(json().result.threshold.chosen).to.be.a('number');",
            },
            path_values={"job_id": "{{task_job_id}}"},
            until=_done("json().status"),
        ),
        Step(
            "POST",
            "/retraining_api/jobs",
            "Tuning an anomaly model is refused",
            (422,),
            {"says why": _has("pm.response.text()", '"tune"')},
            body=_body({"use_case": "{{anomaly_use_case}}", "tune": {}, "requested_by": "postman"}),
        ),
        *(
            Step(
                "DELETE",
                "/ml_data_api/use_cases/{name}",
                f"Delete the {task} use case",
                (200,),
                {"drops its three tables": _is("json().tables.length", "3")},
                path_values=values,
            )
            for task, values in (("classification", grade), ("anomaly", pump))
        ),
    ]


def cleanup_steps() -> list[Step]:
    """Delete what the collection made: services, model versions, rows, the use case."""
    return [
        Step(
            "DELETE",
            "/queue_manager/services/{name}",
            "Delete the second service",
            (204,),
            path_values={"name": "{{extra_service}}"},
        ),
        Step("DELETE", "/queue_manager/services/{name}", "Delete the service", (204,)),
        Step(
            "DELETE",
            "/queue_manager/algorithms/{name}/versions/{version}",
            "Delete the model's versions",
            (204, 404),
            path_values={"version": "latest"},
            until="pm.response.code === 404",
        ),
        _delete_rows("training", len(rows("training"))),
        _delete_rows("testing", len(rows("testing"))),
        _delete_rows("production", PRODUCTION_ROWS),
        Step(
            "GET",
            "/ml_data_api/use_cases/{name}/counts",
            "Count the rows left",
            (200,),
            {"leaves none": _is("json()", '{"training": 0, "testing": 0, "production": 0}')},
        ),
        Step(
            "DELETE",
            "/ml_data_api/use_cases/{name}",
            "Delete the use case",
            (200,),
            {
                "is the use case": _is("json().name", 'v("use_case")'),
                "drops its three tables": _is("json().tables.length", "3"),
            },
        ),
    ]


FOLDERS = {
    "1. Use case and data": data_steps,
    "2. Model and services": model_steps,
    "3. Jobs": job_steps,
    "4. Monitoring": monitoring_steps,
    "5. Retraining and explainers": retraining_steps,
    "6. Classification and anomaly detection": task_steps,
    "7. Clean up": cleanup_steps,
}
