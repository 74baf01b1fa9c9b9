"""The Replicate API token appears in no exception, log record, repr or metadata.

The fake server is told to echo the caller's Authorization header into its error texts (as a
misbehaving proxy might), so the provider must scrub what the server says, not merely avoid
printing the token itself.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterator
from typing import Any

import pytest

from avatar_pipeline.imaging.providers.replicate import ReplicateProvider
from avatar_pipeline.imaging.service import ImageService
from avatar_pipeline.imaging.types import (
    ImageServiceError,
    InvalidImageRequestError,
    InvalidProviderOutputError,
    PredictionFailedError,
    ProviderError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    SafetyRefusalError,
)
from avatar_pipeline_tests.fakes import replicate_server as fake
from avatar_pipeline_tests.fakes.replicate_server import FakeReplicateServer, Fault
from avatar_pipeline_tests.test_imaging.conftest import FAST, png_bytes

SENTINEL = "r8_SENTINEL-9f3c2a77-do-not-leak"
ECHO = "upstream said: {authorization}"


@pytest.fixture
def server() -> Iterator[FakeReplicateServer]:
    with FakeReplicateServer(token=SENTINEL, processing_s=0.02) as s:
        yield s


def _provider(server: FakeReplicateServer, **overrides: Any) -> ReplicateProvider:
    options: dict[str, Any] = {"api_token": SENTINEL, "base_url": server.base_url, **FAST}
    options.update(overrides)
    return ReplicateProvider(**options)


def _exception_text(exc: BaseException) -> str:
    return "\n".join([str(exc), repr(exc), *traceback.format_exception(exc)])


SCENARIOS: list[tuple[str, list[Fault | str], str, dict[str, Any], type[ImageServiceError]]] = [
    ("failed", [Fault(fake.FAILED, message=ECHO)], "create", {}, PredictionFailedError),
    ("safety", [fake.SAFETY], "create", {}, SafetyRefusalError),
    ("5xx", [Fault(fake.SERVER_ERROR, message=ECHO)] * 5, "create", {}, ProviderUnavailableError),
    ("429", [Fault(fake.RATE_LIMIT, retry_after="0")] * 5, "create", {}, ProviderUnavailableError),
    (
        "slow",
        [Fault(fake.SLOW, delay_s=0.5)] * 5,
        "create",
        {"prefer_wait_s": 0, "http_timeout_s": 0.1},
        ProviderUnavailableError,
    ),
    ("corrupt", [fake.CORRUPT_OUTPUT], "create", {}, InvalidProviderOutputError),
    ("wrong size", [fake.WRONG_SIZE], "create", {}, InvalidProviderOutputError),
    (
        "never",
        [fake.NEVER_FINISHES],
        "create",
        {"timeout_s": 0.2, "prefer_wait_s": 0},
        ProviderTimeoutError,
    ),
    (
        "poll 5xx",
        [Fault(fake.SERVER_ERROR, message=ECHO)] * 10,
        "get",
        {"prefer_wait_s": 0},
        ProviderUnavailableError,
    ),
]


@pytest.mark.parametrize(
    ("case", "faults", "on", "options", "error"), SCENARIOS, ids=[s[0] for s in SCENARIOS]
)
async def test_no_error_path_leaks_the_token(
    server: FakeReplicateServer,
    caplog: pytest.LogCaptureFixture,
    case: str,
    faults: list[Fault | str],
    on: str,
    options: dict[str, Any],
    error: type[ImageServiceError],
) -> None:
    caplog.set_level(logging.DEBUG)
    server.schedule(*faults, on=on)
    provider = _provider(server, max_retries=2, **options)
    service = ImageService(provider)
    with pytest.raises(error) as caught:
        await service.edit("waving", [png_bytes()], seed=1)

    assert SENTINEL not in _exception_text(caught.value)
    if case in ("failed", "5xx", "poll 5xx"):
        assert "[redacted]" in str(caught.value)  # the echo arrived and was scrubbed
    assert SENTINEL not in caplog.text
    for record in caplog.records:
        assert SENTINEL not in record.getMessage()
        assert SENTINEL not in repr(record.args)
    assert SENTINEL not in repr(provider) + repr(service)
    await service.aclose()


async def test_rejected_token_and_invalid_request_do_not_leak(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with FakeReplicateServer(token="r8_a-different-token") as other:
        service = ImageService(_provider(other))
        with pytest.raises(ProviderError, match="401") as rejected:
            await service.edit("waving", [png_bytes()], seed=1)
        with pytest.raises(InvalidImageRequestError) as invalid:
            await service.edit("", [png_bytes()], seed=1)
        await service.aclose()
    for exc in (rejected.value, invalid.value):
        assert SENTINEL not in _exception_text(exc)
    assert SENTINEL not in caplog.text


async def test_success_metadata_and_downloads_do_not_carry_the_token(
    server: FakeReplicateServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    service = ImageService(_provider(server))
    edited = await service.edit("waving", [png_bytes()], seed=1)
    generated = await service.generate("a portrait", num_images=2, seed=1)
    versions = await service.latest_model_versions()

    for response in (edited, generated):
        assert SENTINEL not in repr(response.to_metadata())
    assert SENTINEL not in repr(versions)
    assert SENTINEL not in caplog.text
    downloads = server.recorded("download")
    assert len(downloads) == 3 and not any(d.had_authorization for d in downloads)
    assert all(r.authorized for r in server.recorded() if r.kind != "download")
    await service.aclose()
