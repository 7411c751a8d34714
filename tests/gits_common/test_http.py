"""The HTTP layer every GITS API shares holds its limits: a scalar query parameter is
given once, a body over the limit is refused as its bytes arrive (with or without a
Content-Length), and every error answer can be encoded."""

from __future__ import annotations

import asyncio
import json
import select
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import pytest
from fastapi import APIRouter, Depends, FastAPI, Query
from fastapi.testclient import TestClient
from starlette.types import Message

from gits_common import errors
from gits_common.http import BodySizeLimit, create_api, role
from gits_common.settings import Role
from tests.conftest import LiveServer

TOKEN = "http-test-token-of-the-admin-role-0123456789"
TOKENS = {
    Role.admin: TOKEN,
    Role.runtime: "http-test-token-of-the-runtime-role-012345",
    Role.read: "http-test-token-of-the-read-role-0123456789",
}
AUTH = {"Authorization": f"Bearer {TOKEN}"}
KIB = 1024
MIB = 1024 * KIB


def paging(offset: int = 0) -> int:
    """A dependency with a query parameter of its own."""
    return offset


def make_app(*, max_body_bytes: int = 64 * KIB) -> FastAPI:
    router = APIRouter()

    @router.get("/items", openapi_extra=role(Role.read))
    def items(
        offset: Annotated[int, Depends(paging)],
        start: int | None = None,
        since: Annotated[int | None, Query(alias="from")] = None,
        tag: Annotated[list[str], Query()] = [],  # noqa: B006 - FastAPI copies defaults
        ids: Annotated[set[int] | None, Query()] = None,
    ) -> dict[str, Any]:
        return {"start": start, "from": since, "offset": offset, "tag": tag, "ids": ids}

    @router.post("/echo", openapi_extra=role(Role.admin))
    async def echo(body: dict[str, int]) -> dict[str, int]:
        return {"keys": len(body)}

    @router.post("/refuse", openapi_extra=role(Role.admin))
    def refuse() -> None:
        raise errors.InvalidInput("bad key 'a\ud800'", errors=[{"column": "a\x00\udfff"}])

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield

    return create_api(
        title="test",
        summary="test",
        router=router,
        tokens=TOKENS,
        max_body_bytes=max_body_bytes,
        lifespan=lifespan,
    )


@pytest.fixture
def api() -> Iterator[TestClient]:
    with TestClient(make_app(), headers=AUTH) as client:
        yield client


# --- repeated query parameters ----------------------------------------------------------


@pytest.mark.parametrize("name", ["start", "from", "offset"])
def test_a_repeated_scalar_query_parameter_is_refused_naming_it(api, name):
    response = api.get("/items", params=[(name, "1"), ("tag", "x"), (name, "2")])
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"loc": ["query", name], "msg": "given 2 times; give it once", "type": "repeated_parameter"}
    ]
    assert f"query.{name}: given 2 times" in response.json()["detail"]


def test_every_repeated_scalar_parameter_is_named(api):
    response = api.get("/items", params=[("start", "1"), ("start", "2"), ("from", "3")] * 2)
    assert [e["loc"] for e in response.json()["errors"]] == [
        ["query", "from"],
        ["query", "start"],
    ]


def test_list_typed_and_unknown_query_parameters_stay_repeatable(api):
    response = api.get(
        "/items",
        params=[("tag", "a"), ("tag", "b"), ("ids", "1"), ("ids", "2"), ("x", "1"), ("x", "2")],
    )
    assert response.status_code == 200, response.text
    assert response.json()["tag"] == ["a", "b"]
    assert sorted(response.json()["ids"]) == [1, 2]


def test_the_token_is_checked_before_the_parameters():
    with TestClient(make_app()) as client:
        response = client.get("/items", params=[("start", "1"), ("start", "2")])
    assert response.status_code == 401


# --- error answers ----------------------------------------------------------------------


def test_an_error_echoing_text_utf8_cannot_carry_is_answered_escaped(api):
    refused = api.post("/refuse")
    assert refused.status_code == 422
    assert refused.json() == {
        "detail": "bad key 'a\\ud800'",
        "errors": [{"column": "a\\x00\\udfff"}],
    }

    # A key with a lone surrogate (sent as a JSON escape) in a body that fails validation
    content = json.dumps({"\ud800": "not an int"})
    invalid = api.post("/echo", content=content, headers={"Content-Type": "application/json"})
    assert invalid.status_code == 422
    assert invalid.json()["errors"][0]["loc"][0] == "body"  # pydantic names the key lossily


# --- body size --------------------------------------------------------------------------


def json_chunks(total: int, chunk: int, pulled: list[int]) -> Iterator[bytes]:
    """A JSON object of about `total` bytes in `chunk`-byte pieces, made lazily; the
    size of each piece taken is appended to `pulled`."""
    entry = b'"k%09d": 1, '
    per_chunk = chunk // len(entry % 0)
    count = 0
    first = True
    while count * len(entry % 0) < total:
        piece = b"".join(entry % (count + i) for i in range(per_chunk))
        count += per_chunk
        if first:
            piece, first = b"{" + piece, False
        pulled.append(len(piece))
        yield piece
    pulled.append(len(b'"end": 1}'))
    yield b'"end": 1}'


async def call_asgi(app: Any, headers: list[tuple[bytes, bytes]], body: Iterator[bytes]) -> int:
    """Drive an ASGI app with a body that arrives piece by piece, as a server hands a
    chunked request over; returns the status answered."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/echo",
        "raw_path": b"/echo",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"authorization", AUTH["Authorization"].encode()),
            (b"content-type", b"application/json"),
            *headers,
        ],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 2),
    }
    pieces = iter(body)
    answered: dict[str, Any] = {}

    async def receive() -> Message:
        piece = next(pieces, None)
        if piece is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        return {"type": "http.request", "body": piece, "more_body": True}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            answered["status"] = message["status"]

    await app(scope, receive, send)
    return int(answered["status"])


def test_a_chunked_body_over_the_limit_is_refused_without_reading_the_rest():
    # Given a limit of 64 KiB, and 70 MiB coming in 16 KiB pieces with no Content-Length
    limit, chunk = 64 * KIB, 16 * KIB
    app = make_app(max_body_bytes=limit)
    pulled: list[int] = []

    status = asyncio.run(
        call_asgi(app, [(b"transfer-encoding", b"chunked")], json_chunks(70 * MIB, chunk, pulled))
    )

    # Then the answer is 413, and no more than the limit and one piece was read
    assert status == 413
    assert sum(pulled) <= limit + chunk
    assert len(pulled) < 10


def test_a_chunked_body_under_the_limit_is_read_whole():
    pulled: list[int] = []
    status = asyncio.run(
        call_asgi(make_app(max_body_bytes=64 * KIB), [], json_chunks(40 * KIB, 4 * KIB, pulled))
    )
    assert status == 200


def test_a_declared_length_over_the_limit_is_refused_before_any_byte_is_read():
    pulled: list[int] = []
    status = asyncio.run(
        call_asgi(
            make_app(max_body_bytes=64 * KIB),
            [(b"content-length", str(70 * MIB).encode())],
            json_chunks(70 * MIB, 16 * KIB, pulled),
        )
    )
    assert status == 413
    assert pulled == []


def test_a_chunked_body_over_the_limit_is_answered_413_through_the_client(api):
    pulled: list[int] = []
    response = api.post(
        "/echo",
        content=json_chunks(200 * KIB, 16 * KIB, pulled),
        headers={"Content-Type": "application/json"},
    )
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert "more than 65536 bytes is over the limit of 65536" in response.json()["detail"]


def test_the_limit_also_holds_around_an_app_that_is_not_fastapi():
    seen: list[int] = []

    async def reader(scope: Any, receive: Any, send: Any) -> None:  # reads to the end
        while True:
            message = await receive()
            seen.append(len(message.get("body", b"")))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    pulled: list[int] = []
    app = BodySizeLimit(reader, max_bytes=10 * KIB)
    status = asyncio.run(call_asgi(app, [], json_chunks(MIB, KIB, pulled)))
    assert status == 413
    assert sum(seen) <= 10 * KIB
    assert sum(pulled) <= 11 * KIB


def test_a_real_server_answers_413_while_the_client_is_still_sending():
    # Given a served app with a 64 KiB limit, and a client streaming up to 70 MiB
    limit = 64 * KIB
    with LiveServer(make_app(max_body_bytes=limit)) as server:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        head = (
            "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            f"Authorization: {AUTH['Authorization']}\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        sock.sendall(head.encode())
        sent = 0
        piece = b"4000\r\n" + b" " * 0x4000 + b"\r\n"  # 16 KiB of JSON whitespace a chunk
        try:
            # When it sends until the server answers (or stops reading)
            while sent < 70 * MIB and not select.select([sock], [], [], 0)[0]:
                sock.sendall(piece)
                sent += 0x4000
        except OSError:  # the server closed the connection after answering
            pass
        answer = sock.recv(4096)
        sock.close()

    # Then it answered 413 long before the body's end
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < 16 * MIB
