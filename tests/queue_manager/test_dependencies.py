"""A dependency's unexpected answer is a clean 502 with its reason, never a 500; names
in the URLs queue_manager calls are escaped (issue #11)."""

from __future__ import annotations

import dataclasses

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.testclient import TestClient

from queue_manager.app import create_app
from tests.conftest import LiveServer
from tests.queue_manager.conftest import upload


def answering(status: int) -> FastAPI:
    """An ml_data_api stand-in that answers every request with `status`."""
    stand_in = FastAPI()

    @stand_in.api_route("/{path:path}", methods=["GET", "POST"])
    def any_path(path: str, request: Request) -> Response:
        if status == 307:
            return RedirectResponse("http://127.0.0.1:9/elsewhere", status_code=307)
        return JSONResponse({"detail": f"stand-in says {status}"}, status_code=status)

    return stand_in


@pytest.mark.parametrize("status", [307, 400, 401, 403, 500])
def test_an_unexpected_answer_of_ml_data_api_is_a_502_naming_it(settings, auth, sandbox, status):
    with LiveServer(answering(status)) as stand_in:
        app = create_app(
            dataclasses.replace(settings, ml_data_api_url=stand_in.url), sandbox=sandbox
        )
        with TestClient(app, headers=auth) as client:
            response = upload(client, "demo")
    assert response.status_code == 502, response.text
    assert f"ml_data_api answered {status}" in response.json()["detail"]
    assert response.json()["detail"]


def test_a_use_case_name_with_url_tricks_never_reaches_another_route(client):
    # 'a?b' must not resolve to use case 'a', nor '../x' to another path
    for name in ("a?b", "../services/x#", "a%3Fb"):
        response = upload(client, "demo", use_case=name)
        assert response.status_code == 422, (name, response.text)
