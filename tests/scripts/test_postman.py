"""The Postman collection is generated from the APIs, is a test suite in the order a user
works, never touches the demo's use case, and its bodies are accepted.

tests/test_newman.py runs it with newman against the platform as real processes."""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

import pytest

from scripts import postman, postman_journey


@cache
def collection() -> dict[str, Any]:
    return postman.collection()


def requests() -> list[dict[str, Any]]:
    """Every request of the collection, in the order newman runs them."""
    return [item for folder in collection()["item"] for item in folder["item"]]


def api_of(item: dict[str, Any]) -> str:
    """The API a request calls, from its base URL variable."""
    host: str = item["request"]["url"]["host"][0]
    return host.removeprefix("{{").removesuffix("_url}}")


def route(item: dict[str, Any]) -> tuple[str, str]:
    return item["request"]["method"], "/" + "/".join(item["request"]["url"]["path"])


def resolved(text: str) -> str:
    """Text with the collection's default variables filled in."""
    return re.sub(r"\{\{(\w+)\}\}", lambda m: postman_journey.VARIABLES.get(m[1], m[0]), text)


def test_the_committed_collection_is_current():
    assert postman.main(["--check"]) == 0, "run: python scripts/postman.py"


@pytest.mark.parametrize("api", list(postman.APIS))
def test_every_route_of_every_api_is_in_the_collection(api):
    in_collection = {route(i) for i in requests() if api_of(i) == api}
    for path, methods in postman.openapi(api)["paths"].items():
        postman_path = path.replace("{", ":").replace("}", "")
        for method in methods:
            assert (method.upper(), postman_path) in in_collection


def test_every_request_tests_its_status_and_has_a_name_of_its_own():
    # A request that waits for a job asks again by its name (postman.setNextRequest).
    names = [i["name"] for i in requests()]
    assert len(set(names)) == len(names)
    for item in requests():
        (script,) = [e["script"]["exec"] for e in item["event"] if e["listen"] == "test"]
        assert any(line.startswith('pm.test("answers ') for line in script), item["name"]


def test_every_path_parameter_is_a_collection_variable_or_a_value():
    declared = {v["key"] for v in collection()["variable"]}
    for item in requests():
        for parameter in item["request"]["url"]["variable"]:
            value = parameter["value"]
            assert value, f"{item['name']}: :{parameter['key']} is empty"
            for name in re.findall(r"\{\{(\w+)\}\}", value):
                assert name in declared, f"{item['name']}: {{{{{name}}}}} is not declared"


def test_the_collection_uses_its_own_use_case_and_service_never_the_demos():
    sent = json.dumps([(i["request"]["url"], i["request"].get("body")) for i in requests()])
    assert postman_journey.VARIABLES["use_case"] != "product_quality"
    assert "product_quality" not in resolved(sent)


def test_each_request_sends_the_token_of_its_routes_role():
    roles = {
        (method.upper(), path.replace("{", ":").replace("}", ""), api): operation.get("x-gits-role")
        for api in postman.APIS
        for path, methods in postman.openapi(api)["paths"].items()
        for method, operation in methods.items()
    }
    for item in requests():
        role = roles[(*route(item), api_of(item))]
        auth = item["request"]["auth"]
        if role is None:
            assert auth == {"type": "noauth"}, item["name"]
        else:
            assert auth["bearer"][0]["value"] == f"{{{{{role}_token}}}}", item["name"]


def test_it_creates_what_it_reads_and_deletes_what_it_made():
    names = [i["name"] for i in requests()]
    first_read_of_the_use_case = min(
        n for n, i in enumerate(requests()) if ":name" in i["request"]["url"]["raw"]
    )
    assert names.index("Register the use case") < first_read_of_the_use_case
    assert names.index("Upload the model") < names.index("Bind the service")
    assert names.index("Bind the service") < names.index("Start retraining")
    cleanup = [route(i)[0] for i in collection()["item"][-1]["item"]]
    assert collection()["item"][-1]["name"] == "7. Clean up"
    assert cleanup.count("DELETE") >= 5  # two services, the model's versions, the rows
    assert names[-1] == "Delete the use case"


def test_every_task_has_a_use_case_its_monitoring_and_a_retraining():
    folder = next(f for f in collection()["item"] if f["name"].startswith("6. Classification"))
    names = [i["name"] for i in folder["item"]]
    bodies = [i["request"].get("body", {}).get("raw", "") for i in folder["item"]]
    paths = {route(i)[1] for i in folder["item"]}
    for task in ("classification", "anomaly"):
        assert f"Register the {task} use case" in names
        assert f"Delete the {task} use case" in names
    assert {
        "/monitoring_api/use_cases/:name/classification",
        "/monitoring_api/use_cases/:name/anomalies",
        "/monitoring_api/use_cases/:name/performance/estimated",
    } <= paths
    retrainings = [
        json.loads(resolved(b)) for b in bodies if '"requested_by"' in b and "use_case" in b
    ]
    assert any(r.get("tune") and r.get("ensemble") and r.get("fix_imbalance") for r in retrainings)
    assert any(r.get("models") == ["mcd"] for r in retrainings)
    # The demos' own use cases are never touched
    assert not {"quality_class", "sensor_anomaly"} & {v for v in postman_journey.VARIABLES.values()}


def test_the_model_upload_is_a_form_with_the_collections_model_file():
    upload = next(i for i in requests() if route(i) == ("POST", "/queue_manager/algorithms"))
    fields = {f["key"]: f for f in upload["request"]["body"]["formdata"]}
    assert fields["file"]["type"] == "file"
    assert fields["file"]["src"] == postman_journey.MODEL_FILE
    assert fields["features"]["type"] == fields["name"]["type"] == fields["use_case"]["type"]
    assert fields["use_case"]["value"] == "{{use_case}}" and not fields["use_case"]["disabled"]


def test_a_route_the_journey_does_not_know_gets_a_test_that_it_answers_as_documented():
    schemas = {api: postman.openapi(api) for api in postman.APIS}
    unknown = {
        "summary": "Frobnicate",
        "parameters": [{"name": "widget", "in": "path", "required": True}],
        "responses": {"200": {}, "404": {}, "422": {}},
        "security": [{"bearer": []}],
        "x-gits-role": "runtime",
    }
    schemas["ml_data_api"]["paths"]["/ml_data_api/frobnicate/{widget}"] = {"post": unknown}

    folders = postman.folders(schemas)

    assert [f["name"] for f in folders][-2:] == [postman.OTHER_ROUTES, "7. Clean up"]
    (item,) = folders[-2]["item"]
    assert item["request"]["url"]["variable"] == [{"key": "widget", "value": "{{widget}}"}]
    script = "\n".join(item["event"][0]["script"]["exec"])
    assert "to.be.oneOf([200, 404, 422])" in script


def test_the_bodies_are_accepted_by_ml_data_api(client):
    bodies = {
        i["name"]: json.loads(resolved(i["request"]["body"]["raw"]))
        for i in requests()
        if api_of(i) == "ml_data_api" and "body" in i["request"]
    }
    name = postman_journey.VARIABLES["use_case"]

    registered = client.post("/ml_data_api/use_cases", json=bodies["Register the use case"])
    inserted = client.post(
        f"/ml_data_api/use_cases/{name}/production/rows", json=bodies["Insert the production rows"]
    )
    legacy = client.post(
        "/ml_data_api/insert_data/", json=bodies["Insert one production row the original way"]
    )
    labelled = client.post(
        f"/ml_data_api/use_cases/{name}/labels", json=bodies["Attach labels to production rows"]
    )

    assert registered.status_code == 201, registered.text
    assert inserted.status_code == 201, inserted.text
    assert legacy.status_code == 201, legacy.text
    assert labelled.status_code == 200 and labelled.json()["unknown"] == [], labelled.text
