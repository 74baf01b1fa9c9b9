"""Replicate faults injected by the fake server: each ends in success or in a typed error."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable

import pytest

from avatar_pipeline.imaging.providers.replicate import ReplicateProvider
from avatar_pipeline.imaging.service import ImageService
from avatar_pipeline.imaging.types import (
    ImageResponse,
    ImageServiceError,
    InvalidProviderOutputError,
    PredictionFailedError,
    ProviderError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    SafetyRefusalError,
)
from avatar_pipeline_tests.fakes import replicate_server as fake
from avatar_pipeline_tests.fakes.replicate_server import FakeReplicateServer, Fault
from avatar_pipeline_tests.test_imaging.conftest import png_bytes

Make = Callable[..., ReplicateProvider]


async def test_429_waits_for_retry_after_then_succeeds(
    fake_replicate: FakeReplicateServer, make_provider: Make
) -> None:
    fake_replicate.schedule(Fault(fake.RATE_LIMIT, retry_after="1"))
    service = ImageService(make_provider())
    started = time.monotonic()
    response = await service.edit("waving", [png_bytes()], seed=1)
    elapsed = time.monotonic() - started

    assert elapsed >= 1.0
    assert [r.status for r in fake_replicate.creates()] == [429, 201]
    assert response.extra["create_attempts"] == [2]
    await service.aclose()


async def test_retry_after_is_capped(
    fake_replicate: FakeReplicateServer, make_provider: Make
) -> None:
    fake_replicate.schedule(Fault(fake.RATE_LIMIT, retry_after="3600"))
    service = ImageService(make_provider(max_retry_after_s=0.2))
    started = time.monotonic()
    await service.edit("waving", [png_bytes()], seed=1)
    assert 0.2 <= time.monotonic() - started < 5


async def test_5xx_is_retried_then_succeeds(
    fake_replicate: FakeReplicateServer, make_provider: Make
) -> None:
    fake_replicate.schedule(fake.SERVER_ERROR, fake.UNAVAILABLE)
    service = ImageService(make_provider())
    response = await service.edit("waving", [png_bytes()], seed=1)
    assert [r.status for r in fake_replicate.creates()] == [500, 503, 201]
    assert response.image.startswith(b"\x89PNG")


async def test_unreadable_answers_are_retried(
    fake_replicate: FakeReplicateServer, make_provider: Make
) -> None:
    fake_replicate.schedule(fake.GARBAGE)
    fake_replicate.schedule(fake.GARBAGE, on="get")
    service = ImageService(make_provider(prefer_wait_s=0))
    response = await service.edit("waving", [png_bytes()], seed=1)
    assert [r.status for r in fake_replicate.creates()] == [200, 201]
    assert response.image.startswith(b"\x89PNG")


async def test_retries_exhausted_raise_provider_unavailable(
    fake_replicate: FakeReplicateServer, make_provider: Make
) -> None:
    fake_replicate.schedule(*[fake.UNAVAILABLE] * 10)
    service = ImageService(make_provider(max_retries=2))
    with pytest.raises(ProviderUnavailableError, match="after 3 attempts") as caught:
        await service.edit("waving", [png_bytes()], seed=1)
    assert caught.value.retryable
    assert len(fake_replicate.creates()) == 3  # 1 try + max_retries


async def test_slow_create_times_out_and_is_retried(
    fake_replicate: FakeReplicateServer, make_provider: Make
) -> None:
    fake_replicate.schedule(Fault(fake.SLOW, delay_s=1.0))
    service = ImageService(make_provider(prefer_wait_s=0, http_timeout_s=0.3))
    response = await service.edit("waving", [png_bytes()], seed=1)
    assert len(fake_replicate.creates()) == 2
    assert response.extra["create_attempts"] == [2]


async def test_failed_prediction_carries_the_provider_message(
    fake_replicate: FakeReplicateServer, make_provider: Make
) -> None:
    fake_replicate.schedule(Fault(fake.FAILED, message="CUDA out of memory on worker 7"))
    service = ImageService(make_provider())
    with pytest.raises(PredictionFailedError, match="CUDA out of memory on worker 7") as caught:
        await service.edit("waving", [png_bytes()], seed=1)
    assert not isinstance(caught.value, SafetyRefusalError)
    assert caught.value.prediction_id == fake_replicate.creates()[0].prediction_id
    assert len(fake_replicate.creates()) == 1  # a failed prediction is not retried


async def test_safety_refusal(fake_replicate: FakeReplicateServer, make_provider: Make) -> None:
    fake_replicate.schedule(fake.SAFETY)
    service = ImageService(make_provider())
    with pytest.raises(SafetyRefusalError, match="E005"):
        await service.edit("waving", [png_bytes()], seed=1)


@pytest.mark.parametrize("kind", [fake.CORRUPT_OUTPUT, fake.WRONG_SIZE])
async def test_bad_output_is_rejected(
    fake_replicate: FakeReplicateServer, make_provider: Make, kind: str
) -> None:
    fake_replicate.schedule(kind)
    service = ImageService(make_provider())
    reason = "does not decode" if kind == fake.CORRUPT_OUTPUT else "aspect"
    with pytest.raises(InvalidProviderOutputError, match=reason):
        await service.edit("waving", [png_bytes()], seed=1)


async def test_never_finishing_prediction_is_canceled(
    fake_replicate: FakeReplicateServer, make_provider: Make
) -> None:
    fake_replicate.schedule(fake.NEVER_FINISHES)
    service = ImageService(make_provider(timeout_s=0.4, prefer_wait_s=0))
    started = time.monotonic()
    with pytest.raises(ProviderTimeoutError, match="canceled") as caught:
        await service.edit("waving", [png_bytes()], seed=1)
    assert time.monotonic() - started < 3
    [cancel] = fake_replicate.recorded("cancel")
    assert cancel.prediction_id == caught.value.prediction_id
    assert fake_replicate.predictions[cancel.prediction_id].canceled


async def test_poll_errors_are_retried_within_the_budget(
    fake_replicate: FakeReplicateServer, make_provider: Make
) -> None:
    fake_replicate.schedule(fake.SERVER_ERROR, on="get")
    service = ImageService(make_provider(prefer_wait_s=0))
    response = await service.edit("waving", [png_bytes()], seed=1)
    assert response.image.startswith(b"\x89PNG")
    fake_replicate.schedule(*[fake.SERVER_ERROR] * 10, on="get")
    with pytest.raises(ProviderUnavailableError, match="polling"):
        await service.edit("waving again", [png_bytes()], seed=1)
    assert len(fake_replicate.recorded("cancel")) == 1


async def test_output_download_is_retried_then_gives_up(
    fake_replicate: FakeReplicateServer, make_provider: Make
) -> None:
    fake_replicate.schedule(fake.UNAVAILABLE, on="download")
    service = ImageService(make_provider())
    response = await service.edit("waving", [png_bytes()], seed=1)
    assert [d.status for d in fake_replicate.recorded("download")] == [503, 200]
    assert response.image.startswith(b"\x89PNG")
    fake_replicate.schedule(*[fake.SERVER_ERROR] * 5, on="download")
    with pytest.raises(InvalidProviderOutputError, match="could not download"):
        await service.edit("waving again", [png_bytes()], seed=1)
    assert len(fake_replicate.recorded("download")) == 2 + 3  # bounded: 1 try + 2 retries


async def test_a_rejected_request_is_not_retried(make_provider: Make) -> None:
    service = ImageService(make_provider(api_token="r8_wrong-token"))
    with pytest.raises(ProviderError, match=r"401.*REPLICATE_API_TOKEN") as caught:
        await service.edit("waving", [png_bytes()], seed=1)
    assert not caught.value.retryable


async def test_caller_cancellation_cancels_the_prediction(
    fake_replicate: FakeReplicateServer, make_provider: Make
) -> None:
    fake_replicate.schedule(fake.NEVER_FINISHES)
    # only the caller's deadline can end it (the provider's own timeout is far away)
    service = ImageService(make_provider(prefer_wait_s=0, timeout_s=60))
    with pytest.raises(TimeoutError):
        # long enough for the version lookup and the create, far shorter than the prediction
        await asyncio.wait_for(service.edit("waving", [png_bytes()], seed=1), timeout=1.5)
    assert len(fake_replicate.recorded("cancel")) == 1


@pytest.mark.timeout(60)
async def test_fifty_edits_under_thirty_percent_mixed_faults(
    fake_replicate: FakeReplicateServer, make_provider: Make
) -> None:
    faults = (
        Fault(fake.RATE_LIMIT, retry_after="0.05"),
        Fault(fake.SERVER_ERROR),
        Fault(fake.UNAVAILABLE),
        Fault(fake.SLOW, delay_s=1.0),
        Fault(fake.GARBAGE),
        Fault(fake.FAILED),
        Fault(fake.SAFETY),
        Fault(fake.CORRUPT_OUTPUT),
        Fault(fake.WRONG_SIZE),
        Fault(fake.NEVER_FINISHES),
    )
    fake_replicate.random_faults(rate=0.3, seed=20240601, faults=faults)
    max_retries = 2
    provider = make_provider(
        max_retries=max_retries, timeout_s=0.5, prefer_wait_s=0, http_timeout_s=0.4
    )
    service = ImageService(provider, max_concurrency=16)
    reference = png_bytes()

    async def one(i: int) -> ImageResponse | BaseException:
        try:
            return await asyncio.wait_for(service.edit(f"call-{i:02d}", [reference], seed=i), 20)
        except Exception as exc:
            return exc

    outcomes = await asyncio.gather(*(one(i) for i in range(50)))

    kinds = Counter(type(o).__name__ for o in outcomes)
    unexpected = [o for o in outcomes if not isinstance(o, ImageResponse | ImageServiceError)]
    assert not unexpected, unexpected  # no hang (TimeoutError) and no untyped error
    assert kinds["ImageResponse"] >= 20 and len(kinds) >= 3, kinds
    # a create whose body never fully arrived (the client gave up mid-request under load) has
    # no prompt: the fake created nothing for it, so it is not a paid prediction
    creates_per_call = Counter(r.prompt for r in fake_replicate.creates() if r.prompt)
    assert set(creates_per_call) == {f"call-{i:02d}" for i in range(50)}
    assert max(creates_per_call.values()) <= max_retries + 1, creates_per_call.most_common(3)
    for i, outcome in enumerate(outcomes):
        if isinstance(outcome, ImageResponse):
            assert outcome.prompt == f"call-{i:02d}"
            assert outcome.image.startswith(b"\x89PNG")
    await service.aclose()
