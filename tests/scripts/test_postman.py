"""The Postman collection is generated from the APIs, and its examples work."""

from __future__ import annotations

import json

import pytest

from scripts import postman


def test_the_committed_collection_is_current():
    assert postman.main(["--check"]) == 0, "run: python scripts/postman.py"


@pytest.mark.parametrize("api", list(postman.APIS))
def test_every_route_of_every_api_is_in_the_collection(api):
    folder = next(f for f in postman.collection()["item"] if f["name"] == api)
    in_collection = {
        (i["request"]["method"], "/" + "/".join(i["request"]["url"]["path"]))
        for i in folder["item"]
    }
    for path, methods in postman.openapi(api)["paths"].items():
        postman_path = path.replace("{", ":").replace("}", "")
        for method in methods:
            assert (method.upper(), postman_path) in in_collection


def test_the_model_upload_is_a_form_with_a_file():
    folder = next(f for f in postman.collection()["item"] if f["name"] == "queue_manager")
    upload = next(
        i
        for i in folder["item"]
        if i["request"]["method"] == "POST" and i["request"]["url"]["path"][-1] == "algorithms"
    )
    fields = {f["key"]: f["type"] for f in upload["request"]["body"]["formdata"]}
    assert fields["file"] == "file"
    assert fields["features"] == fields["name"] == fields["use_case"] == "text"


def test_the_example_bodies_are_accepted_by_ml_data_api(client):
    folder = next(f for f in postman.collection()["item"] if f["name"] == "ml_data_api")
    bodies = {
        i["name"]: json.loads(i["request"]["body"]["raw"])
        for i in folder["item"]
        if "body" in i["request"]
    }

    registered = client.post("/ml_data_api/use_cases", json=bodies["Register Use Case"])
    inserted = client.post(
        "/ml_data_api/use_cases/product_quality/production/rows", json=bodies["Insert Rows"]
    )
    legacy = client.post("/ml_data_api/insert_data/", json=bodies["Insert Data"])

    assert registered.status_code in (200, 201), registered.text
    assert inserted.status_code == 201, inserted.text
    assert legacy.status_code == 201, legacy.text
