"""Declare in the OpenAPI document every error status each operation really answers.

The statuses follow from what a route depends on and how it is reached, the same facts that
make the app answer them:

- 401: the route authenticates a bearer token (``deps.get_current_user``); the request guard
  also answers it before reading the body.
- 403: the route needs the admin role (``deps.get_current_admin``).
- 404: the route has path parameters or a body (an id that names nothing, or someone else's).
- 409: the route writes (a conflict with the current state: uniqueness, status transitions).
- 400 and 413: the route takes a body (413 from the request guard; 400 for a body FastAPI
  cannot even parse: bytes that are not UTF-8 JSON, a malformed multipart form).
- 422: the route has parameters or a body (schema validation, and the domain's own rules).
- 502: the route talks to the image provider or the object store.
- 503: the route uses the catalog (database down or busy: no connection free in time), with
  ``Retry-After``.

Every error body is ``schemas.ErrorBody``: FastAPI's default 422 ``HTTPValidationError`` is
replaced, since the app also answers 422 with a string ``detail``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute

from avatar_pipeline.serving.guard import BODY_METHODS, _calls, flat_routes
from avatar_pipeline.serving.schemas import ErrorBody

RETRY_AFTER_HEADER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "schema": {"type": "integer"},
    }
}
DESCRIPTIONS = {
    400: "The body could not be parsed (not UTF-8 JSON, or a malformed multipart form).",
    401: "No bearer token, or one that is expired, forged or signed with another secret.",
    403: "The caller's role may not do this (avatar kit administration needs 'admin').",
    404: "No such resource (or it is not the caller's).",
    409: "Conflicts with the current state (uniqueness, status rules, not ready for approval).",
    413: "The request body is larger than this endpoint accepts; refused before it was read.",
    422: "The request does not fit the schema, or the domain's rules reject it.",
    502: "The image provider or the object store failed.",
    503: "The catalog database is unavailable or busy; retry after Retry-After seconds.",
}


def _depends_on(route: APIRoute, name: str) -> bool:
    return any(getattr(call, "__name__", None) == name for call in _calls(route.dependant))


def error_statuses(route: APIRoute) -> set[int]:
    dependant = route.dependant
    statuses: set[int] = set()
    if _depends_on(route, "get_current_user"):
        statuses.add(401)
    if _depends_on(route, "get_current_admin"):
        statuses.add(403)
    if dependant.path_params or dependant.body_params:
        statuses.add(404)  # an id in the path or the body that names nothing (or not yours)
    methods = set(route.methods or ())
    if methods & BODY_METHODS:
        statuses |= {409, 413}
    if dependant.body_params:
        statuses |= {400, 422}  # 400: a body that is not even text/a form (FastAPI's answer)
    if dependant.path_params or dependant.query_params or dependant.header_params:
        statuses.add(422)
    if _depends_on(route, "get_object_store") or _depends_on(route, "get_image_service"):
        statuses.add(502)
    if _depends_on(route, "get_services"):
        statuses.add(503)
    return statuses


def declare_error_responses(app: FastAPI, document: dict[str, Any]) -> dict[str, Any]:
    """Add each operation's error statuses to ``document`` (a generated OpenAPI document), all
    with the ``ErrorBody`` schema; a status the route declared itself keeps its description
    and, where it has one, its own content."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in (
        ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
        .pop("$defs", {})
        .items()
    ):
        schemas.setdefault(name, schema)
    body_schema = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    body_schema.pop("$defs", None)
    schemas["ErrorBody"] = body_schema
    error_content = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    paths = document.get("paths", {})
    for route in flat_routes(app.routes):
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        for method in route.methods or ():
            operation = paths.get(route.path_format, {}).get(method.lower())
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            declared = {int(code) for code in responses if code.isdigit() and int(code) >= 400}
            for status in sorted(error_statuses(route) | declared):
                entry = responses.setdefault(str(status), {})
                entry.setdefault("description", DESCRIPTIONS.get(status, "Error."))
                content = entry.get("content") or {}
                if not content or _is_validation_error(content):
                    entry["content"] = error_content
                    if entry["description"] == "Validation Error":
                        entry["description"] = DESCRIPTIONS.get(status, "Error.")
                if status == 503:
                    entry["headers"] = RETRY_AFTER_HEADER
    if "HTTPValidationError" not in json.dumps(paths):  # the app never sends that body
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
    return document


def _is_validation_error(content: dict[str, Any]) -> bool:
    schema = content.get("application/json", {}).get("schema", {})
    return str(schema.get("$ref", "")).endswith("/HTTPValidationError")


def install_openapi(app: FastAPI) -> None:
    """Make ``app.openapi()`` declare the error responses of every route, including routes
    added after this call (the document is completed once, when it is first built)."""
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = declare_error_responses(app, build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
