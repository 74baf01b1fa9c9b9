"""The app against its own OpenAPI document, with schemathesis (bounded: a few examples per
operation, with and without a token): no server error, and every status code, content type,
body and declared header the app answers is the one the document declares."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from avatar_pipeline_tests.test_serving.conftest import Api

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
EXAMPLES = 2
# The studio's HTML pages and report files have their own tests (STUDIO-WEB helper); this
# checks the JSON API and /files.
NOT_HERE = ("/studio", "/reports", "/docs", "/redoc", "/static")


def test_openapi_declares_every_error_status_the_app_sends(api: Api) -> None:
    document = api.client.get("/openapi.json").json()
    assert "HTTPValidationError" not in str(document)
    operations = document["paths"]
    kits = operations["/avatar-kits/{kit_id}"]["patch"]["responses"]
    assert {"401", "403", "404", "409", "413", "422", "503"} <= set(kits)
    assert kits["503"]["headers"]["Retry-After"]["schema"] == {"type": "integer"}
    upload = operations["/avatar-kits/{kit_id}/assets"]["post"]["responses"]
    assert {"400", "401", "403", "404", "413", "422", "502", "503"} <= set(upload)
    memories = operations["/scenes/memories"]["get"]["responses"]
    assert {"401", "503"} <= set(memories) and "403" not in memories
    for path, methods in operations.items():
        for method, operation in methods.items():
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")) and path != "/healthz":
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (path, method)


def _exercise(
    operation: Any, headers: dict[str, str], mode: GenerationMode, failures: list[str]
) -> None:
    @given(case=operation.as_strategy(mode))
    @hypothesis_settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        try:
            case.call_and_validate(headers=headers, checks=CHECKS)
        except Exception as exc:  # collect them all, report at the end
            failures.append(f"{case.operation.label}: {type(exc).__name__}: {exc}"[:800])

    try:
        run()
    except Unsatisfiable:  # nothing to negate (e.g. GET /healthz has no parameters)
        assert mode is GenerationMode.NEGATIVE


def test_schemathesis_finds_no_nonconformance(api: Api) -> None:
    kit = api.create_kit()
    assert api.upload(kit["id"]).status_code == 201
    schema = schemathesis.openapi.from_asgi("/openapi.json", api.client.app)
    failures: list[str] = []
    tested = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path.startswith(NOT_HERE):
            continue
        tested += 1
        for headers, mode in (
            (api.admin.headers, GenerationMode.POSITIVE),
            (api.admin.headers, GenerationMode.NEGATIVE),  # invalid input: 4xx, as declared
            (api.user.headers, GenerationMode.POSITIVE),
            ({}, GenerationMode.POSITIVE),
        ):
            _exercise(operation, headers, mode, failures)
    assert tested >= 20
    if failures:
        pytest.fail(f"{len(failures)} non-conformant responses:\n" + "\n---\n".join(failures[:10]))
