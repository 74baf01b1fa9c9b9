"""Failed predictions that are worth creating again: FLUX 2 Pro's ``KeyError: 'sample'``,
nano-banana's failure with no output and no error, a crash; safety refusals are not retried."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import avatar_pipeline_tests.fakes.replicate_server as fake
from avatar_pipeline.imaging.providers.replicate import ReplicateProvider
from avatar_pipeline.imaging.service import ImageService
from avatar_pipeline.imaging.types import PredictionFailedError, SafetyRefusalError
from avatar_pipeline_tests.fakes.replicate_server import FakeReplicateServer
from avatar_pipeline_tests.test_imaging.conftest import png_bytes

Make = Callable[..., ReplicateProvider]


async def test_keyerror_sample_is_retried_with_the_same_seed(
    fake_replicate: FakeReplicateServer, make_provider: Make
) -> None:
    fake_replicate.schedule(fake.KEYERROR_SAMPLE)
    service = ImageService(make_provider(max_prediction_attempts=3))
    two_refs = [png_bytes(), png_bytes(colour=(10, 200, 10))]  # FLUX 2 Pro
    response = await service.edit("waving", two_refs, seed=7)
    creates = fake_replicate.creates()
    assert len(creates) == 2
    assert [c.body["input"]["seed"] for c in creates] == [7, 7]
    (retry,) = response.extra["prediction_retries"]
    assert "KeyError: 'sample'" in retry["error"] and retry["seed"] == 7
    assert response.seed == 7 and "seed_requested" not in response.extra
    await service.aclose()


async def test_a_seed_that_failed_twice_is_replaced_and_recorded(
    fake_replicate: FakeReplicateServer, make_provider: Make
) -> None:
    fake_replicate.schedule(fake.KEYERROR_SAMPLE, fake.KEYERROR_SAMPLE)
    service = ImageService(make_provider(max_prediction_attempts=3))
    response = await service.edit("waving", [png_bytes(), png_bytes()], seed=7)
    seeds = [c.body["input"]["seed"] for c in fake_replicate.creates()]
    assert seeds[:2] == [7, 7] and seeds[2] != 7
    assert response.seed == seeds[2] and response.extra["seed_requested"] == 7
    assert response.extra["input"]["seed"] == seeds[2]
    assert len(response.extra["prediction_retries"]) == 2
    await service.aclose()


async def test_failed_with_no_output_and_no_error_is_retried(
    fake_replicate: FakeReplicateServer, make_provider: Make
) -> None:
    fake_replicate.schedule(fake.NO_OUTPUT)
    service = ImageService(make_provider(max_prediction_attempts=2))
    response = await service.edit("waving", [png_bytes()], seed=1)
    (retry,) = response.extra["prediction_retries"]
    assert "no output and no error" in retry["error"]
    await service.aclose()


async def test_retries_are_bounded_and_the_last_error_names_the_earlier_ones(
    fake_replicate: FakeReplicateServer, make_provider: Make
) -> None:
    fake_replicate.schedule(*[fake.KEYERROR_SAMPLE] * 5)
    service = ImageService(make_provider(max_prediction_attempts=3))
    with pytest.raises(PredictionFailedError, match="after 3 predictions") as caught:
        await service.edit("waving", [png_bytes(), png_bytes()], seed=1)
    assert not isinstance(caught.value, SafetyRefusalError)
    assert fake_replicate.create_count() == 3
    await service.aclose()


async def test_safety_refusal_is_not_retried(
    fake_replicate: FakeReplicateServer, make_provider: Make
) -> None:
    fake_replicate.schedule(fake.SAFETY)
    service = ImageService(make_provider(max_prediction_attempts=3))
    with pytest.raises(SafetyRefusalError, match="safety filter"):
        await service.edit("waving", [png_bytes()], seed=1)
    assert fake_replicate.create_count() == 1
    await service.aclose()
