"""The Postman collection is generated from the APIs, and its examples work."""

from __future__ import annotations

import json

import pytest

from scripts import postman


def test_the_committed_collection_is_current():
    assert postman.main(["--check"]) == 0, "run: python scripts/postman.py"


def test_every_ml_data_api_route_is_in_the_collection(app):
    folder = next(f for f in postman.collection()["item"] if f["name"] == "ml_data_api")
    in_collection = {
        (i["request"]["method"], "/" + "/".join(i["request"]["url"]["path"]))
        for i in folder["item"]
    }
    for path, methods in app.openapi()["paths"].items():
        postman_path = path.replace("{", ":").replace("}", "")
        for method in methods:
            assert (method.upper(), postman_path) in in_collection


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
