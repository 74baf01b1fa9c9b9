"""Fixtures for the ImageService tests: the fake Replicate server over real HTTP on loopback."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from PIL import Image

from avatar_pipeline.imaging.providers.base import ImageProvider
from avatar_pipeline.imaging.providers.replicate import ReplicateProvider
from avatar_pipeline.imaging.types import EditRequest, GenerateRequest, ProviderResult
from avatar_pipeline_tests.fakes.replicate_server import FakeReplicateServer

# Small timings keep the whole directory fast; the fake holds each prediction 0.05 s.
FAST = {
    "poll_interval_s": 0.02,
    "backoff_base_s": 0.01,
    "timeout_s": 5.0,
    "max_retries": 3,
    "prefer_wait_s": 5,
    "http_timeout_s": 5.0,
    # One prediction per call unless a test asks for retries (test_prediction_retries.py).
    "max_prediction_attempts": 1,
}


def png_bytes(
    width: int = 256, height: int = 256, colour: tuple[int, int, int] = (200, 40, 40)
) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def fake_replicate() -> Iterator[FakeReplicateServer]:
    with FakeReplicateServer(processing_s=0.05) as server:
        yield server


@pytest.fixture
def make_provider(fake_replicate: FakeReplicateServer) -> Callable[..., ReplicateProvider]:
    def make(**overrides: Any) -> ReplicateProvider:
        options: dict[str, Any] = {
            "api_token": fake_replicate.token,
            "base_url": fake_replicate.base_url,
            **FAST,
        }
        options.update(overrides)
        return ReplicateProvider(**options)

    return make


class RecordingProvider(ImageProvider):
    """A test-only provider: returns a PNG after ``delay_s`` and tracks calls in flight."""

    def __init__(self, name: str, delay_s: float = 0.05, version: str = "v1") -> None:
        self.name = name
        self.delay_s = delay_s
        self.version = version
        self.calls = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.call_times: list[float] = []

    async def _work(self, prompt: str, seed: int | None, n: int) -> ProviderResult:
        self.calls += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self.call_times.append(asyncio.get_running_loop().time())
        try:
            await asyncio.sleep(self.delay_s)
        finally:
            self.in_flight -= 1
        return ProviderResult(
            images=tuple(png_bytes(64, 64) for _ in range(n)),
            provider=self.name,
            model="test/model",
            model_version=self.version,
            prompt_sent=prompt,
            seed=seed,
            cost_usd=0.01 * n,
        )

    async def generate(self, request: GenerateRequest) -> ProviderResult:
        return await self._work(request.prompt, request.seed, request.num_images)

    async def edit(self, request: EditRequest) -> ProviderResult:
        return await self._work(request.prompt, request.seed, 1)

    def model_for(self, operation: str, reference_count: int = 0) -> tuple[str, str]:
        return "test/model", self.version

    async def latest_model_versions(self) -> dict[str, str]:
        return {"test/model": self.version}
