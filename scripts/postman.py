"""Build postman_collection.json from the OpenAPI documents of the GITS APIs.

    python scripts/postman.py                    # rewrite postman_collection.json
    python scripts/postman.py --check            # exit 1 if the file is out of date
    python scripts/postman.py --model-file PATH  # write the model file the collection uploads

The collection is a test suite: its requests run in the order of
`scripts/postman_journey.py` (register a use case of its own, load rows, upload a model,
bind a service, jobs, monitoring, retraining, then delete what it made), each with a test
script on its status and the fields a user relies on. A route of an API that the journey
does not name is still in the collection, in a folder of its own before the clean-up, with
a test that it answers as documented. Each request sends the bearer token of the role its
route asks for (`{{admin_token}}`, `{{runtime_token}}`, `{{read_token}}`); every base
URL, path parameter, use case and service is a collection variable.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make the checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts import postman_journey as journey
from scripts.postman_journey import Step

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "postman_collection.json"


# Each API's package and the port its users find it on.
APIS = {"queue_manager": 8001, "ml_data_api": 8004, "monitoring_api": 8005, "retraining_api": 8006}
ROLES = ("admin", "runtime", "read")
# Which collection variable fills a path parameter: (API, where the path starts, parameter).
PATH_VARIABLES = [
    ("queue_manager", "/queue_manager/algorithms", "name", "algorithm"),
    ("queue_manager", "/queue_manager/algorithms", "version", "algorithm_version"),
    ("queue_manager", "/queue_manager/services", "name", "service"),
    ("queue_manager", "/queue_manager/jobs", "service", "service"),
    ("queue_manager", "/queue_manager/jobs", "message_id", "message_id"),
    ("ml_data_api", "/ml_data_api/use_cases", "name", "use_case"),
    ("ml_data_api", "/ml_data_api/use_cases", "table", "table"),
    ("monitoring_api", "/monitoring_api/use_cases", "name", "use_case"),
    ("monitoring_api", "/monitoring_api/use_cases", "kind", "report_kind"),
    ("monitoring_api", "/monitoring_api/use_cases", "alert_id", "alert_id"),
    ("retraining_api", "/retraining_api/explainers", "job_id", "explainer_job_id"),
    ("retraining_api", "/retraining_api/jobs", "job_id", "retraining_job_id"),
    ("retraining_api", "/retraining_api/services", "name", "service"),
]
OTHER_ROUTES = "Other routes"
SCRIPT_HEAD = [
    "const v = (name) => pm.variables.get(name);",
    "const json = () => pm.response.json();",
]


def openapi(api: str) -> dict[str, Any]:
    """OpenAPI schema of one API, from its own `create_app` and settings."""
    app = importlib.import_module(f"{api}.app")
    settings = importlib.import_module(f"{api}.settings")
    schema: dict[str, Any] = app.create_app(settings.load_settings()).openapi()
    return schema


def path_variable(api: str, path: str, param: str) -> str:
    """The collection variable of a path parameter: a named one, else the parameter's."""
    for known_api, prefix, known_param, variable in PATH_VARIABLES:
        if (known_api, known_param) == (api, param) and path.startswith(prefix):
            return variable
    return param


def request_item(
    api: str, step: Step, operation: dict[str, Any], schema: dict[str, Any]
) -> dict[str, Any]:
    """One Postman request for one OpenAPI operation, as the step uses it."""
    path, method = step.path, step.method
    # A trailing slash is part of some original GITS routes: keep it as an empty segment.
    segments = [s.replace("{", ":").replace("}", "") for s in path[1:].split("/")]
    parameters = operation.get("parameters", [])
    url = {
        "raw": f"{{{{{api}_url}}}}/{'/'.join(segments)}" + _query_string(step),
        "host": [f"{{{{{api}_url}}}}"],
        "path": segments,
        "query": [_query_parameter(p, step) for p in parameters if p["in"] == "query"],
        "variable": [
            {
                "key": p["name"],
                "value": step.path_values.get(p["name"])
                or f"{{{{{path_variable(api, path, p['name'])}}}}}",
            }
            for p in parameters
            if p["in"] == "path"
        ],
    }
    request: dict[str, Any] = {
        "method": method.upper(),
        "header": [],
        "url": url,
        "description": operation.get("description", ""),
        "auth": _auth(operation),
    }
    _add_body(request, operation, step, schema.get("components", {}).get("schemas", {}))
    item: dict[str, Any] = {"name": step.name, "request": request, "event": events(step)}
    return item


def _query_string(step: Step) -> str:
    return "?" + "&".join(f"{k}={v}" for k, v in step.query.items()) if step.query else ""


def _query_parameter(parameter: dict[str, Any], step: Step) -> dict[str, Any]:
    name = parameter["name"]
    return {
        "key": name,
        "value": step.query.get(name, ""),
        "disabled": name not in step.query and not parameter.get("required", False),
        "description": parameter.get("description", ""),
    }


def _auth(operation: dict[str, Any]) -> dict[str, Any]:
    """The bearer token of the route's role; none for the open routes."""
    if not operation.get("security"):
        return {"type": "noauth"}
    role = operation.get("x-gits-role", "admin")
    return {"type": "bearer", "bearer": [{"key": "token", "value": f"{{{{{role}_token}}}}"}]}


def _add_body(
    request: dict[str, Any], operation: dict[str, Any], step: Step, components: dict[str, Any]
) -> None:
    content = operation.get("requestBody", {}).get("content", {})
    if "application/json" in content:
        request["header"].append({"key": "Content-Type", "value": "application/json"})
        request["body"] = {"mode": "raw", "raw": step.body or _example(content)}
    elif "multipart/form-data" in content:
        request["body"] = {"mode": "formdata", "formdata": form_fields(content, step, components)}


def _example(content: dict[str, Any]) -> str:
    """The route's first OpenAPI example, for a route the journey does not name."""
    examples: dict[str, Any] = content["application/json"].get("examples", {})
    first: dict[str, Any] = next(iter(examples.values()), {})
    return json.dumps(first.get("value", {}), indent=2)


def form_fields(
    content: dict[str, Any], step: Step, components: dict[str, Any]
) -> list[dict[str, Any]]:
    """Postman form fields for a multipart body: files as file fields (the model file the
    collection uploads), the rest as text, on when the step fills them or they are
    required."""
    schema = _flatten(content["multipart/form-data"]["schema"], components)
    required = set(schema.get("required", []))
    fields = []
    for name, prop in schema.get("properties", {}).items():
        field: dict[str, Any] = {"key": name, "description": prop.get("description", "")}
        if _is_file(prop):
            field.update(type="file", src=journey.MODEL_FILE, disabled=False)
        else:
            value = step.form.get(name, "")
            field.update(type="text", value=value, disabled=not value and name not in required)
        fields.append(field)
    return fields


def _is_file(prop: dict[str, Any]) -> bool:
    """A binary part (the model file), not a text field (JSON text included)."""
    media = prop.get("contentMediaType")
    return prop.get("format") == "binary" or media == "application/octet-stream"


def _flatten(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    """A schema with its $ref and allOf parts merged into one properties/required."""
    if "$ref" in schema:
        return _flatten(components[schema["$ref"].rsplit("/", 1)[1]], components)
    properties, required = {}, list(schema.get("required", []))
    for part in schema.get("allOf", []):
        flat = _flatten(part, components)
        properties.update(flat.get("properties", {}))
        required += flat.get("required", [])
    properties.update(schema.get("properties", {}))
    return {"properties": properties, "required": required}


def events(step: Step) -> list[dict[str, Any]]:
    """The step's pre-request script (if any) and its test script."""
    tests = [*SCRIPT_HEAD, *status_test(step)]
    checks = [f"pm.test({json.dumps(name)}, () => {{ {js} }});" for name, js in step.checks.items()]
    if step.until is None:
        tests += checks
    else:  # ask again, a second later, until the condition holds (or the polls run out)
        tests += [
            'const polls = Number(pm.collectionVariables.get("polls") || 0);',
            f"if (!({step.until}) && polls < {journey.MAX_POLLS}) {{",
            '    pm.collectionVariables.set("polls", polls + 1);',
            "    postman.setNextRequest(pm.info.requestName);",
            f"    setTimeout(() => {{}}, {journey.POLL_SECONDS * 1000});",
            "} else {",
            '    pm.collectionVariables.unset("polls");',
            *(f"    {line}" for line in checks),
            "}",
        ]
    found = [{"listen": "test", "script": {"type": "text/javascript", "exec": tests}}]
    if step.prerequest:
        script = {"type": "text/javascript", "exec": list(step.prerequest)}
        found.insert(0, {"listen": "prerequest", "script": script})
    return found


def status_test(step: Step) -> list[str]:
    """The test every request has: its status is one the step expects."""
    codes = " or ".join(str(c) for c in step.status)
    return [
        f'pm.test("answers {codes}", () => {{',
        "    const answer = pm.response.text().slice(0, 500);",
        f"    pm.expect(pm.response.code, answer).to.be.oneOf({list(step.status)});",
        "});",
    ]


def documented(method: str, path: str, operation: dict[str, Any]) -> Step:
    """A step for a route the journey does not name: it must answer as documented."""
    codes = sorted(int(c) for c in operation.get("responses", {}) if c.isdigit() and int(c) < 500)
    name = operation.get("summary") or f"{method.upper()} {path}"
    return Step(method.upper(), path, name, tuple(codes))


def api_of(step: Step) -> str:
    """The API a step calls: its own, or the one its path starts with."""
    return step.api or step.path.split("/")[1]


def folders(schemas: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The journey's folders, and before its clean-up a folder for the routes it does not
    name; a step whose route its API does not have (yet) is left out."""
    named: set[tuple[str, str, str]] = set()
    result = []
    for title, steps in journey.FOLDERS.items():
        items = []
        for step in steps():
            api = api_of(step)
            operation = schemas[api]["paths"].get(step.path, {}).get(step.method.lower())
            if operation is not None:
                named.add((api, step.method.lower(), step.path))
                items.append(request_item(api, step, operation, schemas[api]))
        result.append({"name": title, "item": items})
    others = [
        request_item(api, documented(method, path, operation), operation, schemas[api])
        for api, schema in schemas.items()
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
        if (api, method, path) not in named
    ]
    if others:
        result.insert(len(result) - 1, {"name": OTHER_ROUTES, "item": others})
    return result


def collection() -> dict[str, Any]:
    """The whole collection: the journey's folders, its variables and the role tokens."""
    schemas = {api: openapi(api) for api in APIS}
    items = folders(schemas)
    variables = [
        {"key": f"{api}_url", "value": f"http://127.0.0.1:{port}"} for api, port in APIS.items()
    ]
    variables += [{"key": f"{role}_token", "value": ""} for role in ROLES]
    known = {**journey.VARIABLES}
    for path_variable_name in _path_variables(items):
        known.setdefault(path_variable_name, "")
    variables += [{"key": key, "value": value} for key, value in known.items()]
    return {
        "info": {
            "name": "GITS",
            "description": DESCRIPTION,
            "schema": "https://schema.getpostman.com/json/collection/v2.1.0/collection.json",
        },
        "auth": {"type": "bearer", "bearer": [{"key": "token", "value": "{{read_token}}"}]},
        "variable": variables,
        "item": items,
    }


DESCRIPTION = (
    "Every GITS API, as a test suite that runs in order: it registers a use case of its "
    "own (`use_case`), loads rows, uploads a model and binds a service of its own "
    "(`service`), records jobs, monitors, retrains, then deletes what it made. Set "
    "`admin_token`, `runtime_token` and `read_token` to GITS_ADMIN_TOKEN, "
    "GITS_RUNTIME_TOKEN and GITS_READ_TOKEN from .env, and write the model file it uploads "
    f"with `python scripts/postman.py --model-file {journey.MODEL_FILE}` (run newman "
    "with `--working-dir` at the checkout). Regenerate with `python scripts/postman.py`."
)


def _path_variables(folders_: list[dict[str, Any]]) -> list[str]:
    """Every variable a path parameter refers to, in order of use."""
    names: dict[str, None] = {}
    for folder in folders_:
        for item in folder["item"]:
            for variable in item["request"]["url"]["variable"]:
                value = variable["value"]
                if value.startswith("{{") and value.endswith("}}"):
                    names[value[2:-2]] = None
    return list(names)


def render() -> str:
    """The collection as the file's text."""
    return json.dumps(collection(), indent=2) + "\n"


def write_model_file(path: Path) -> None:
    """Train the collection's model (a linear PyCaret pipeline on its training rows) and
    save it where the collection's upload reads it."""
    from gits_ml import modeling  # PyCaret: imported only when a model is asked for

    pipeline, _ = modeling.train(journey.USE_CASE, journey.tables()["training"], include=["lr"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(modeling.to_bytes(pipeline))


def main(argv: list[str]) -> int:
    """Write the collection, check it is current (--check), or write the model file."""
    if "--model-file" in argv:
        index = argv.index("--model-file") + 1
        target = Path(argv[index]) if index < len(argv) else ROOT / journey.MODEL_FILE
        write_model_file(target)
        return 0
    text = render()
    if "--check" in argv:
        if not OUTPUT.exists() or OUTPUT.read_text() != text:
            print("postman_collection.json is out of date: run python scripts/postman.py")
            return 1
        return 0
    OUTPUT.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
