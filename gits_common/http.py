"""FastAPI pieces every GITS API shares: bearer tokens by role, the error-to-status
table and the error answers every operation documents, one value per scalar query
parameter, the request body size limit, the `Allow` header of a 405, and Swagger UI
served from local files."""

from __future__ import annotations

import collections.abc
import secrets
import types
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Annotated, Any, Union, get_args, get_origin

import swagger_ui_bundle
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Request, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gits_common import __version__, errors
from gits_common.registry import Name
from gits_common.rules import printable
from gits_common.schemas import UseCaseName
from gits_common.settings import Role

# Names in URL paths, checked by the rules of what they name: anything else (a NUL, a
# slash, an empty name) is a 422 naming the parameter, never a query that fails.
UseCaseNamePath = Annotated[UseCaseName, Path(description="A use case's name")]
NamePath = Annotated[Name, Path(description="An algorithm's or a service's name")]

STATUS_CODES: dict[type[errors.GitsError], int] = {
    errors.NotFound: status.HTTP_404_NOT_FOUND,
    errors.Conflict: status.HTTP_409_CONFLICT,
    errors.InvalidInput: status.HTTP_422_UNPROCESSABLE_CONTENT,
    errors.TooLarge: status.HTTP_413_CONTENT_TOO_LARGE,
    errors.Unavailable: status.HTTP_503_SERVICE_UNAVAILABLE,
    errors.DependencyFailed: status.HTTP_502_BAD_GATEWAY,
}


class ErrorRead(BaseModel):
    """Every error answer of a GITS API: 4xx for the request, 5xx for the service."""

    detail: str = Field(description="What went wrong, in words")
    errors: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Bad input only: each problem (at most 20), where it is (`loc`, or "
        "`row` and `column` of a row) and why",
    )


def error_responses(reasons: Mapping[type[errors.GitsError], str]) -> dict[int | str, Any]:
    """A route's `responses` for the domain errors it answers beyond the ones every
    operation documents (`create_api`), each with the reason it happens: status codes
    from STATUS_CODES, bodies ErrorRead."""
    return {
        STATUS_CODES[kind]: {"model": ErrorRead, "description": reason}
        for kind, reason in reasons.items()
    }


Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]
ROLE_KEY = "x-gits-role"  # the OpenAPI extension naming the role an operation needs
DOCS_ASSETS = "/docs/assets"


def role(required: Role) -> dict[str, Any]:
    """A route's `openapi_extra`: the role its bearer token needs, which the API checks
    before anything else and its OpenAPI document states."""
    return {ROLE_KEY: required.name}


def create_api(
    *,
    title: str,
    summary: str,
    router: APIRouter,
    tokens: Mapping[Role, str],
    max_body_bytes: int,
    lifespan: Lifespan,
) -> FastAPI:
    """A GITS API: every route of `router` behind the role it declares (`role`), checked
    from the Authorization header before the body is read (401 without a valid token, 403
    when its role is too low); each scalar query parameter given at most once
    (`single_query_values`); domain errors answered with their status codes; bodies over
    `max_body_bytes` refused with 413 as soon as the limit is passed; a 405 naming in
    `Allow` every method of the path; Swagger UI at /docs served from the package's own
    files. Every operation documents the error answers it may give (`_document_errors`)
    besides those its route states (`error_responses`). Open routes (/health) are added
    to the returned app by the caller. Raises ValueError for a route that declares no
    role."""
    undeclared = [
        f"{sorted(r.methods or [])} {r.path}"
        for r in router.routes
        if isinstance(r, APIRoute) and ROLE_KEY not in (r.openapi_extra or {})
    ]
    if undeclared:
        raise ValueError(f"routes without a role: {undeclared}")
    app = FastAPI(
        title=title,
        summary=summary,
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    add_error_handlers(app)
    app.include_router(
        router, dependencies=[Depends(single_query_values), Depends(single_form_values)]
    )
    _add_docs(app)
    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes)
    # Added last, so outermost: a request without the right token is answered before
    # its body is read at all.
    app.add_middleware(RoleAuth, tokens=tokens, routes=lambda: router.routes)
    return app


class RoleAuth:
    """ASGI middleware checking `Authorization: Bearer <token>` against the role the
    matched route declares, before the request reaches the app (so before its body is
    read). Tokens are compared in constant time; routes without a role are open."""

    def __init__(
        self, app: ASGIApp, *, tokens: Mapping[Role, str], routes: Callable[[], list[Any]]
    ) -> None:
        self.app = app
        self.tokens = [(role, token.encode()) for role, token in tokens.items()]
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            needed = self._needed(scope)
            if needed is not None:
                held = self._role_of(dict(scope["headers"]).get(b"authorization", b""))
                if held is None:
                    await self._refuse(401, "Missing or invalid bearer token", scope, send)
                    return
                if held < needed:
                    reason = f"this needs the {needed.name} role; the token given is {held.name}"
                    await self._refuse(403, reason, scope, send)
                    return
        await self.app(scope, receive, send)

    def _needed(self, scope: Scope) -> Role | None:
        for route in self.routes():
            if isinstance(route, APIRoute):
                match, _ = route.matches(scope)
                if match is Match.FULL:
                    return Role[(route.openapi_extra or {})[ROLE_KEY]]
        return None

    def _role_of(self, header: bytes) -> Role | None:
        scheme, _, credentials = header.partition(b" ")
        if scheme.lower() != b"bearer" or not credentials:
            return None
        found = None
        for held, token in self.tokens:  # every comparison made: no early exit to time
            if secrets.compare_digest(credentials.strip(), token):
                found = held
        return found

    async def _refuse(self, code: int, reason: str, scope: Scope, send: Send) -> None:
        headers = {"WWW-Authenticate": "Bearer"} if code == 401 else None
        response = JSONResponse({"detail": reason}, status_code=code, headers=headers)
        await response(scope, _no_body, send)


async def _no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


def _add_docs(app: FastAPI) -> None:
    """Swagger UI from the swagger-ui-bundle package's files, not from a CDN: people paste
    their tokens into this page. Every operation says its role; the page asks for the
    bearer token once (Authorize)."""
    app.mount(DOCS_ASSETS, StaticFiles(directory=swagger_ui_bundle.swagger_ui_path))

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
        )

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, summary=app.summary, routes=app.routes
            )
            schema.setdefault("components", {})["securitySchemes"] = {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "GITS_ADMIN_TOKEN, GITS_RUNTIME_TOKEN or GITS_READ_TOKEN",
                }
            }
            for operations in schema["paths"].values():
                for operation in operations.values():
                    needed = operation.get(ROLE_KEY)
                    if needed is not None:
                        operation["security"] = [{"bearer": []}]
                        note = f"Role: **{needed}** (or a higher one)."
                        operation["description"] = f"{operation.get('description', '')}\n\n{note}"
                        _document_errors(operation, needed)
            _use_error_schema(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorRead"}}}


def _answer(description: str, **headers: str) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description, "content": _ERROR}
    if headers:
        answer["headers"] = {
            name: {"description": text, "schema": {"type": "string"}, "required": True}
            for name, text in headers.items()
        }
    return answer


def _document_errors(operation: dict[str, Any], needed: str) -> None:
    """Add to an operation's responses the errors it may answer whatever its route: no
    valid token (401), too low a role (403), input that breaks a rule (422, for an
    operation that takes any: FastAPI's own 422 is not the shape GITS answers), a body
    that cannot be read or is too large (400, 413), nothing of the name in its path
    (404), and a store out of reach (503). Responses the route states stay as they are."""
    responses = operation.setdefault("responses", {})
    common = {
        "401": _answer(
            "No bearer token, or not one of this API's",
            **{"WWW-Authenticate": "Bearer"},
        ),
        "403": _answer(f"The token's role is below {needed}"),
        "503": _answer(
            "A store or service it needs is out of reach; try again later",
            **{"Retry-After": "Seconds to wait"},
        ),
    }
    parameters = operation.get("parameters", [])
    if parameters or "requestBody" in operation:
        common["422"] = _answer("The input breaks a rule: `errors` names each problem")
    if "requestBody" in operation:
        common["400"] = _answer("The body cannot be parsed (not UTF-8 JSON or form data)")
        common["413"] = _answer("The body is over the API's size limit")
    if any(p.get("in") == "path" for p in parameters):
        common["404"] = _answer("Nothing of the name given in the path")
    for code, answer in common.items():
        stated = responses.get(code)
        if stated is None or (code == "422" and not _is_ours(stated)):
            responses[code] = answer


def _is_ours(answer: dict[str, Any] | None) -> bool:
    """Whether a documented 422 is one a route stated with ErrorRead (not FastAPI's)."""
    if answer is None:
        return False
    schema = answer.get("content", {}).get("application/json", {}).get("schema", {})
    return bool(schema.get("$ref", "").endswith("/ErrorRead"))


def _use_error_schema(schema: dict[str, Any]) -> None:
    """Put ErrorRead in the document's components, instead of FastAPI's validation error
    shapes, which no GITS API answers."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["ErrorRead"] = ErrorRead.model_json_schema()
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)


def add_error_handlers(app: FastAPI) -> None:
    """Answer every domain error with its status code and a readable reason."""

    async def handle(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, errors.GitsError)
        # A plain GitsError names no status of its own: the API could not do its work.
        code = next(
            (c for kind, c in STATUS_CODES.items() if isinstance(exc, kind)),
            status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
        body: dict[str, Any] = {"detail": exc.detail}
        if exc.errors:
            body["errors"] = exc.errors
        headers = {"Retry-After": "5"} if code == status.HTTP_503_SERVICE_UNAVAILABLE else None
        return JSONResponse(_encodable(body), status_code=code, headers=headers)

    async def handle_invalid_request(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        problems = [
            {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()
        ]
        reasons = "; ".join(f"{'.'.join(map(str, p['loc']))}: {p['msg']}" for p in problems[:3])
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        return JSONResponse(
            _encodable({"detail": f"invalid request: {reasons}{more}", "errors": problems[:20]}),
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        )

    async def handle_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == status.HTTP_405_METHOD_NOT_ALLOWED:
            # Starlette names the methods of the first route whose path matched; a path
            # served by several routes (GET and POST /items) takes them all.
            allowed = ", ".join(sorted(_methods_of_path(request.app, request.scope)))
            headers = {**(exc.headers or {}), "Allow": allowed}
            return JSONResponse({"detail": exc.detail}, status_code=405, headers=headers)
        return await http_exception_handler(request, exc)

    app.add_exception_handler(errors.GitsError, handle)
    app.add_exception_handler(RequestValidationError, handle_invalid_request)
    app.add_exception_handler(StarletteHTTPException, handle_http)


def _methods_of_path(app: FastAPI, scope: Scope) -> set[str]:
    """Every method some route serves at the request's path."""
    methods: set[str] = set()
    for route in app.routes:
        if isinstance(route, APIRoute):
            match, _ = route.matches(scope)
            if match is not Match.NONE:
                methods |= route.methods or set()
    return methods


def _encodable(content: Any) -> Any:
    """The error body with every text `printable`: a reason may echo a key the client
    sent with a NUL or an unpaired surrogate, which a UTF-8 answer cannot carry."""
    if isinstance(content, str):
        return printable(content)
    if isinstance(content, dict):
        return {_encodable(k): _encodable(v) for k, v in content.items()}
    if isinstance(content, list | tuple):
        return [_encodable(item) for item in content]
    return content


async def single_query_values(request: Request) -> None:
    """A dependency refusing a request that repeats a scalar query parameter, with 422
    naming it: FastAPI would silently take the last value (`?start=A&end=B&start=C`
    deletes [C, B)). Parameters typed as lists stay repeatable."""
    query = request.query_params
    if len(query.multi_items()) == len(query):  # no name given twice: the usual case
        return
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    repeated = [name for name in _scalar_query_names(route) if len(query.getlist(name)) > 1]
    if repeated:
        raise RequestValidationError(
            [
                {
                    "type": "repeated_parameter",
                    "loc": ("query", name),
                    "msg": f"given {len(query.getlist(name))} times; give it once",
                    "input": query.getlist(name),
                }
                for name in sorted(repeated)
            ]
        )


async def single_form_values(request: Request) -> None:
    """A dependency refusing a form (an upload) that gives one of its fields twice, with
    422 naming it: python-multipart hands on both and the last would silently win
    (`name` twice created a model under the second name)."""
    kind = request.headers.get("content-type", "")
    if not kind.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        return
    form = await request.form()  # parsed once, for the route too
    names = [name for name, value in form.multi_items() if isinstance(value, str)]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise RequestValidationError(
            [
                {
                    "type": "repeated_field",
                    "loc": ("body", name),
                    "msg": "given more than once; give it once",
                    "input": None,
                }
                for name in repeated
            ]
        )


def _scalar_query_names(route: APIRoute) -> frozenset[str]:
    """The names of the route's query parameters (its own and its dependencies') that
    take one value. Computed only for a request that repeats a name: rare, and cheap."""
    names: set[str] = set()
    dependants = [route.dependant]
    while dependants:
        dependant = dependants.pop()
        dependants.extend(dependant.dependencies)
        for field in dependant.query_params:
            annotation = field.field_info.annotation
            model = _model_of(annotation)
            if model is None:
                if not _repeatable(annotation):
                    names.add(field.alias)
            else:  # a pydantic model of query parameters: each of its fields is one
                names.update(
                    f.alias or name
                    for name, f in model.model_fields.items()
                    if not _repeatable(f.annotation)
                )
    return frozenset(names)


def _model_of(annotation: Any) -> type[BaseModel] | None:
    candidates = (
        get_args(annotation)
        if get_origin(annotation) in (Union, types.UnionType)
        else (annotation,)
    )
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _repeatable(annotation: Any) -> bool:
    """Whether a query parameter of this type takes many values (list[int], set[str],
    tuple[...], optional or annotated)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _repeatable(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return any(_repeatable(arg) for arg in get_args(annotation))
    kind = origin or annotation
    return (
        isinstance(kind, type)
        and issubclass(kind, collections.abc.Collection)
        and not issubclass(kind, str | bytes | collections.abc.Mapping)
    )


class _BodyTooLarge(HTTPException):
    """Raised by the limited `receive` once a body passes the limit. An HTTPException,
    so FastAPI's body parsing lets it through (it turns other errors into 400)."""


class BodySizeLimit:
    """ASGI middleware answering 413 to a request whose body is over a limit: at once
    when its Content-Length says so, before any of it is read; otherwise (chunked
    transfer) as soon as the bytes received pass the limit, without reading the rest.
    The app is never handed more than the limit of one request's body."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_bytes:
            await self._refuse(f"request body of {int(length)} bytes", scope, receive, send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge(
                        status.HTTP_413_CONTENT_TOO_LARGE,
                        self._reason(f"request body of more than {self.max_bytes} bytes"),
                    )
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, watched_send)
        except _BodyTooLarge:  # raised where no exception handler answered it
            if started:
                raise
            await self._refuse(
                f"request body of more than {self.max_bytes} bytes", scope, receive, send
            )

    def _reason(self, what: str) -> str:
        return f"{what} is over the limit of {self.max_bytes}; split it into smaller requests"

    async def _refuse(self, what: str, scope: Scope, receive: Receive, send: Send) -> None:
        response = JSONResponse(
            {"detail": self._reason(what)}, status_code=status.HTTP_413_CONTENT_TOO_LARGE
        )
        await response(scope, receive, send)
