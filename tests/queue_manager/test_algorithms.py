"""Uploading, reading, downloading and deleting model files."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import mongoengine
from fastapi.testclient import TestClient

from queue_manager.app import create_app
from queue_manager.pg_store import PostgresStore
from tests.queue_manager.conftest import FEATURES, bind, model, unique, upload


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def stored_files(client: TestClient) -> int:
    """Model files in the app's store (its model_files table, or GridFS)."""
    store = client.app.state.queue_manager.db  # type: ignore[attr-defined]
    if isinstance(store, PostgresStore):

        def count(conn: Any) -> int:
            with conn.cursor() as cur:
                cur.execute(f'SELECT count(*) FROM "{store.schema}".model_files')
                return int(cur.fetchone()[0])

        return store.db.run(count)
    files = mongoengine.get_db(store.documents.alias)["algorithm_files.files"]
    return int(files.count_documents({}))


def test_uploads_of_one_name_get_versions_1_then_2_with_their_checksums(client: TestClient):
    first, second = model(), model(padding=5000)

    one = upload(client, "demo", first, target="quality", description="baseline")
    two = upload(client, "demo", second, uploaded_by="retraining_api")
    other = upload(client, "other", first)

    assert one.status_code == two.status_code == other.status_code == 201, one.text
    assert one.json()["version"] == 1
    assert one.json()["sha256"] == sha256(first)
    assert one.json()["size"] == len(first)
    assert one.json()["filename"] == "demo-v1.pkl"  # never the client's "model.pkl"
    assert one.json()["features"] == FEATURES
    assert one.json()["target"] == "quality"
    assert one.json()["uploaded_by"] == "api"
    assert two.json()["version"] == 2
    assert two.json()["sha256"] == sha256(second)
    assert two.json()["size"] == len(second)
    assert two.json()["uploaded_by"] == "retraining_api"
    assert other.json()["version"] == 1
    latest = client.get("/queue_manager/algorithms/demo/versions/latest").json()
    assert latest == two.json()


def test_algorithms_are_listed_newest_first_and_filtered(client: TestClient):
    upload(client, "a", use_case="line_1")
    upload(client, "b", use_case="line_2")
    upload(client, "a", use_case="line_1")

    every = client.get("/queue_manager/algorithms").json()
    by_name = client.get("/queue_manager/algorithms", params={"name": "a"}).json()
    by_use_case = client.get("/queue_manager/algorithms", params={"use_case": "line_2"}).json()

    assert [(a["name"], a["version"]) for a in every] == [("a", 2), ("b", 1), ("a", 1)]
    assert [a["version"] for a in by_name] == [2, 1]
    assert [a["name"] for a in by_use_case] == ["b"]
    assert client.get("/queue_manager/algorithms", params={"name": "zzz"}).json() == []


def test_a_matching_checksum_is_accepted_in_any_case(client: TestClient):
    content = model()
    response = upload(client, "checked", content, sha256=sha256(content).upper())
    assert response.status_code == 201, response.text
    assert response.json()["sha256"] == sha256(content)


def test_a_checksum_mismatch_is_refused_and_nothing_is_stored(client: TestClient):
    real = model()
    response = upload(client, "demo", real, sha256=sha256(b"other bytes"))

    assert response.status_code == 422
    assert "checksum mismatch" in response.json()["detail"]
    assert sha256(real) in response.json()["detail"]
    assert client.get("/queue_manager/algorithms").json() == []
    assert stored_files(client) == 0
    assert upload(client, "demo").json()["version"] == 1


def test_an_empty_file_is_refused(client: TestClient):
    response = upload(client, "demo", b"")
    assert response.status_code == 422
    assert "empty file" in response.json()["detail"]
    assert client.get("/queue_manager/algorithms").json() == []


def test_a_file_over_the_limit_is_refused_and_one_at_the_limit_is_kept(settings, auth):
    content = model()
    limit = len(content)
    small = create_app(dataclasses.replace(settings, max_model_bytes=limit))
    with TestClient(small, headers=auth) as client:
        over = upload(client, "big", model(padding=1))
        at_limit = upload(client, "big", content)

        assert over.status_code == 413
        assert f"over the limit of {limit} bytes" in over.json()["detail"]
        assert at_limit.status_code == 201
        assert at_limit.json()["version"] == 1  # the refused file took no version
        assert stored_files(client) == 1


def test_a_download_returns_the_identical_bytes_and_their_checksum(client: TestClient):
    content = model(padding=3 * 1024 * 1024 + 17)  # several GridFS and response chunks
    one = model()
    upload(client, "demo", one)
    upload(client, "demo", content)

    response = client.get("/queue_manager/algorithms/demo/versions/2/file")
    latest = client.get("/queue_manager/algorithms/demo/versions/latest/file")
    first = client.get("/queue_manager/algorithms/demo/versions/1/file")

    assert response.status_code == 200
    assert response.content == content
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["X-Checksum-SHA256"] == sha256(content)
    assert response.headers["Content-Disposition"] == "attachment; filename=demo-v2.pkl"
    assert latest.content == content
    assert first.content == one


def test_missing_algorithms_and_versions_are_404_with_a_reason(client: TestClient):
    upload(client, "demo")
    cases = {
        "/queue_manager/algorithms/nope/versions/1": "no algorithm named 'nope'",
        "/queue_manager/algorithms/nope/versions/latest": "no algorithm named 'nope'",
        "/queue_manager/algorithms/demo/versions/7": "algorithm 'demo' has no version 7",
        "/queue_manager/algorithms/demo/versions/7/file": "algorithm 'demo' has no version 7",
    }
    for path, reason in cases.items():
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.json()["detail"] == reason
    assert client.delete("/queue_manager/algorithms/demo/versions/7").status_code == 404


def test_deleting_an_unused_version_removes_it_and_its_file(client: TestClient):
    upload(client, "demo")
    upload(client, "demo")

    response = client.delete("/queue_manager/algorithms/demo/versions/1")

    assert response.status_code == 204
    assert client.get("/queue_manager/algorithms/demo/versions/1").status_code == 404
    assert client.get("/queue_manager/algorithms/demo/versions/1/file").status_code == 404
    assert [a["version"] for a in client.get("/queue_manager/algorithms").json()] == [2]
    assert stored_files(client) == 1
    assert upload(client, "demo").json()["version"] == 3


def test_a_version_in_use_cannot_be_deleted_until_the_service_is_rebound(client, broker):
    # Given v1 pinned by one service and v2, the latest, followed by another
    pinned, follower = broker.service_name(), broker.service_name()
    upload(client, "demo")
    upload(client, "demo")
    assert bind(client, pinned, "demo", 1).status_code == 201
    assert bind(client, follower, "demo", "latest").status_code == 201

    # When either version is deleted, Then it is refused, naming the service
    explicit = client.delete("/queue_manager/algorithms/demo/versions/1")
    through_latest = client.delete("/queue_manager/algorithms/demo/versions/2")
    assert explicit.status_code == through_latest.status_code == 409
    assert pinned in explicit.json()["detail"]
    assert follower in through_latest.json()["detail"]
    assert client.get("/queue_manager/algorithms/demo/versions/1").json()["services"] == [pinned]
    assert client.get("/queue_manager/algorithms/demo/versions/2").json()["services"] == [follower]

    # When the services are rebound elsewhere, Then the versions can go
    upload(client, "next")
    bind(client, pinned, "next", 1)
    bind(client, follower, "next", "latest")
    assert client.delete("/queue_manager/algorithms/demo/versions/1").status_code == 204
    assert client.delete("/queue_manager/algorithms/demo/versions/2").status_code == 204
    assert stored_files(client) == 1


def test_the_original_get_algorithms_url_lists_every_version(client: TestClient):
    upload(client, "a")
    upload(client, "b")
    response = client.get("/queue_manager/get_algorithms")
    assert response.status_code == 200
    assert sorted(a["name"] for a in response.json()) == ["a", "b"]


def test_names_are_free_of_path_tricks(client: TestClient):
    name = unique("ok.name_1")
    assert upload(client, name).json()["filename"] == f"{name}-v1.pkl"
    for bad in ["../etc", "a/b", "-lead", "", "x" * 101, "has space"]:
        response = upload(client, bad)
        assert response.status_code == 422, bad
        assert "name" in response.json()["detail"], bad
