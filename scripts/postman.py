"""Build postman_collection.json from the OpenAPI schemas of the GITS APIs.

    python scripts/postman.py          # rewrite postman_collection.json
    python scripts/postman.py --check  # exit 1 if the file is out of date

Each API is a folder; its base URL is a collection variable (`{{ml_data_api_url}}`), and
every request sends `Authorization: Bearer {{token}}`.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "postman_collection.json"


# Each API's package and the port its users find it on.
APIS = {"queue_manager": 8001, "ml_data_api": 8004, "monitoring_api": 8005, "retraining_api": 8006}


def openapi(api: str) -> dict[str, Any]:
    """OpenAPI schema of one API, from its own `create_app` and settings."""
    app = importlib.import_module(f"{api}.app")
    settings = importlib.import_module(f"{api}.settings")
    schema: dict[str, Any] = app.create_app(settings.load_settings()).openapi()
    return schema


def request_item(api: str, path: str, method: str, operation: dict[str, Any]) -> dict[str, Any]:
    """One Postman request for one OpenAPI operation."""
    # A trailing slash is part of some original GITS routes: keep it as an empty segment.
    segments = [s.replace("{", ":").replace("}", "") for s in path[1:].split("/")]
    query = [
        {
            "key": p["name"],
            "value": "",
            "disabled": not p.get("required", False),
            "description": p.get("description", ""),
        }
        for p in operation.get("parameters", [])
        if p["in"] == "query"
    ]
    item: dict[str, Any] = {
        "name": operation.get("summary") or f"{method.upper()} {path}",
        "request": {
            "method": method.upper(),
            "header": [],
            "url": {
                "raw": f"{{{{{api}_url}}}}/{'/'.join(segments)}",
                "host": [f"{{{{{api}_url}}}}"],
                "path": segments,
                "query": query,
                "variable": [
                    {"key": p["name"], "value": ""}
                    for p in operation.get("parameters", [])
                    if p["in"] == "path"
                ],
            },
            "description": operation.get("description", ""),
        },
    }
    content = operation.get("requestBody", {}).get("content", {})
    if "application/json" in content:
        item["request"]["header"].append({"key": "Content-Type", "value": "application/json"})
        examples: dict[str, Any] = content["application/json"].get("examples", {})
        first: dict[str, Any] = next(iter(examples.values()), {})
        example = first.get("value", {})
        item["request"]["body"] = {"mode": "raw", "raw": json.dumps(example, indent=2)}
    elif "multipart/form-data" in content:
        item["request"]["body"] = {"mode": "formdata", "formdata": form_fields(content)}
    if not operation.get("security") and path == "/health":
        item["request"]["auth"] = {"type": "noauth"}
    return item


def form_fields(content: dict[str, Any]) -> list[dict[str, Any]]:
    """Postman form fields for a multipart body: files as file fields, the rest as text."""
    schema = _flatten(content["multipart/form-data"]["schema"])
    required = set(schema.get("required", []))
    return [
        {
            "key": name,
            "type": "file" if _is_file(prop) else "text",
            "value": "",
            "disabled": name not in required,
            "description": prop.get("description", ""),
        }
        for name, prop in schema.get("properties", {}).items()
    ]


SCHEMAS: dict[str, Any] = {}  # components of the API being converted, for $ref lookups


def _is_file(prop: dict[str, Any]) -> bool:
    """A binary part (the model file), not a text field (JSON text included)."""
    media = prop.get("contentMediaType")
    return prop.get("format") == "binary" or media == "application/octet-stream"


def _flatten(schema: dict[str, Any]) -> dict[str, Any]:
    """A schema with its $ref and allOf parts merged into one properties/required."""
    if "$ref" in schema:
        return _flatten(SCHEMAS[schema["$ref"].rsplit("/", 1)[1]])
    properties, required = {}, list(schema.get("required", []))
    for part in schema.get("allOf", []):
        flat = _flatten(part)
        properties.update(flat.get("properties", {}))
        required += flat.get("required", [])
    properties.update(schema.get("properties", {}))
    return {"properties": properties, "required": required}


def collection() -> dict[str, Any]:
    """The whole collection, one folder per API."""
    folders, variables = [], [{"key": "token", "value": ""}]
    for api, port in APIS.items():
        schema = openapi(api)
        SCHEMAS.clear()
        SCHEMAS.update(schema.get("components", {}).get("schemas", {}))
        items = [
            request_item(api, path, method, operation)
            for path, methods in schema["paths"].items()
            for method, operation in methods.items()
        ]
        folders.append({"name": api, "item": items})
        variables.append({"key": f"{api}_url", "value": f"http://127.0.0.1:{port}"})
    return {
        "info": {
            "name": "GITS",
            "description": "Every GITS API. Set the `token` variable to GITS_ADMIN_TOKEN "
            "from .env. Regenerate with `python scripts/postman.py`.",
            "schema": "https://schema.getpostman.com/json/collection/v2.1.0/collection.json",
        },
        "auth": {"type": "bearer", "bearer": [{"key": "token", "value": "{{token}}"}]},
        "variable": variables,
        "item": folders,
    }


def render() -> str:
    """The collection as the file's text."""
    return json.dumps(collection(), indent=2) + "\n"


def main(argv: list[str]) -> int:
    """Write the file, or with --check report whether it is current."""
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
