"""FastAPI pieces every GITS API shares: bearer-token auth and the error-to-status table."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import ASGIApp, Receive, Scope, Send

from gits_common import __version__, errors

STATUS_CODES: dict[type[errors.GitsError], int] = {
    errors.NotFound: status.HTTP_404_NOT_FOUND,
    errors.Conflict: status.HTTP_409_CONFLICT,
    errors.InvalidInput: status.HTTP_422_UNPROCESSABLE_CONTENT,
    errors.TooLarge: status.HTTP_413_CONTENT_TOO_LARGE,
    errors.Unavailable: status.HTTP_503_SERVICE_UNAVAILABLE,
}

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]
_bearer = HTTPBearer(auto_error=False, description="GITS_API_TOKEN from the environment")


def bearer_auth(token: str) -> Callable[..., Awaitable[None]]:
    """A dependency that lets a request through only with `Authorization: Bearer <token>`."""
    expected = token.encode()

    async def check(  # async: a plain comparison needs no threadpool hop
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> None:
        if credentials is None or not secrets.compare_digest(
            credentials.credentials.encode(), expected
        ):
            raise HTTPException(
                status_code=status.HTTP_401_UNAUTHORIZED,
                detail="Missing or invalid bearer token",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return check


def create_api(
    *,
    title: str,
    summary: str,
    router: APIRouter,
    token: str,
    max_body_bytes: int,
    lifespan: Lifespan,
) -> FastAPI:
    """A GITS API: the router behind the bearer token, domain errors answered with
    their status codes, and bodies over the limit refused before they are read. Open
    routes (/health) are added to the returned app by the caller."""
    app = FastAPI(title=title, summary=summary, version=__version__, lifespan=lifespan)
    add_error_handlers(app)
    app.include_router(router, dependencies=[Depends(bearer_auth(token))])
    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes)
    return app


def add_error_handlers(app: FastAPI) -> None:
    """Answer every domain error with its status code and a readable reason."""

    async def handle(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, errors.GitsError)
        code = next(c for kind, c in STATUS_CODES.items() if isinstance(exc, kind))
        body: dict[str, Any] = {"detail": exc.detail}
        if exc.errors:
            body["errors"] = exc.errors
        headers = {"Retry-After": "5"} if code == status.HTTP_503_SERVICE_UNAVAILABLE else None
        return JSONResponse(body, status_code=code, headers=headers)

    async def handle_invalid_request(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        problems = [
            {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()
        ]
        reasons = "; ".join(f"{'.'.join(map(str, p['loc']))}: {p['msg']}" for p in problems[:3])
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        return JSONResponse(
            {"detail": f"invalid request: {reasons}{more}", "errors": problems[:20]},
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        )

    app.add_exception_handler(errors.GitsError, handle)
    app.add_exception_handler(RequestValidationError, handle_invalid_request)


class BodySizeLimit:
    """ASGI middleware answering 413 to a request whose declared body is over a limit,
    before any of it is read."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            length = dict(scope["headers"]).get(b"content-length", b"")
            if length.isdigit() and int(length) > self.max_bytes:
                response = JSONResponse(
                    {
                        "detail": f"request body of {int(length)} bytes is over the limit of "
                        f"{self.max_bytes}; split it into smaller requests"
                    },
                    status_code=status.HTTP_413_CONTENT_TOO_LARGE,
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
