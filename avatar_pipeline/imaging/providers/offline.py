"""The offline image provider: a procedural character renderer, the embedded default.

No network, no accounts, no cost. It draws a recognisable doll-like character from the prompt
(hair colour and length, eye colour, outfit, art style, expression, pose, framing) with Pillow.
``generate()`` varies everything the prompt leaves open with the seed, which makes the drift the
spec warns about visible; ``edit()`` keeps the reference's identity, which it reads from a text
chunk embedded in every PNG it renders (or estimates from the pixels of an upload).

Seeds: a request without a seed gets one derived from its prompt (and, for edits, the first
reference's bytes), so the same request always gives the same bytes; the seed used is returned
in ``ProviderResult.seed``. ``latency_seconds`` simulates provider latency per image with
``asyncio.sleep``; rendering runs in a worker thread, so concurrent calls overlap.
"""

from __future__ import annotations

import asyncio
from typing import Any

from avatar_pipeline.imaging.offline.engine import (
    ReferenceImageError,
    derive_seed,
    edit_png,
    generate_png,
)
from avatar_pipeline.imaging.providers.base import ImageProvider
from avatar_pipeline.imaging.types import (
    EditRequest,
    GenerateRequest,
    InvalidImageRequestError,
    ProviderResult,
)

OFFLINE_MODEL = "offline/character-renderer"
MAX_SIDE = 4096
MIN_SIDE = 16
MAX_REFERENCES = 8
MAX_IMAGES = 8


def _check_size(width: int, height: int) -> None:
    for name, value in (("width", width), ("height", height)):
        if not MIN_SIDE <= value <= MAX_SIDE:
            raise InvalidImageRequestError(
                f"{name}={value} is outside what the offline renderer draws "
                f"({MIN_SIDE}..{MAX_SIDE} pixels); ask for a size in that range"
            )


class OfflineProvider(ImageProvider):
    """Renders characters locally; deterministic for a (request, seed)."""

    name = "offline"

    def __init__(self, latency_seconds: float = 0.0, model_version: str = "offline-1") -> None:
        if latency_seconds < 0:
            raise ValueError(f"latency_seconds must be >= 0, got {latency_seconds}")
        if not model_version:
            raise ValueError("model_version must not be empty")
        self.latency_seconds = latency_seconds
        self.model_version = model_version

    @property
    def _renderer(self) -> str:
        return f"{OFFLINE_MODEL}:{self.model_version}"

    def model_for(self, operation: str, reference_count: int = 0) -> tuple[str, str]:
        if operation not in ("generate", "edit"):
            raise ValueError(f"unknown operation {operation!r}; expected 'generate' or 'edit'")
        return OFFLINE_MODEL, self.model_version

    async def latest_model_versions(self) -> dict[str, str]:
        return {OFFLINE_MODEL: self.model_version}

    async def _render(self, func: Any, *args: Any) -> Any:
        """Run the drawing in a thread *during* the simulated latency, as a remote provider
        computes during its latency: a call takes max(latency, drawing time), not the sum."""
        drawing = asyncio.to_thread(func, *args)
        if self.latency_seconds <= 0:
            return await drawing
        result, _ = await asyncio.gather(drawing, asyncio.sleep(self.latency_seconds))
        return result

    async def generate(self, request: GenerateRequest) -> ProviderResult:
        _check_size(request.width, request.height)
        if not 1 <= request.num_images <= MAX_IMAGES:
            raise InvalidImageRequestError(
                f"num_images={request.num_images}; the offline renderer makes 1..{MAX_IMAGES}"
            )
        seed = request.seed if request.seed is not None else derive_seed(request.prompt)
        images: list[bytes] = []
        extras: list[dict[str, object]] = []
        for i in range(request.num_images):
            png, extra = await self._render(
                generate_png,
                request.prompt,
                request.negative_prompt,
                seed + i,
                request.width,
                request.height,
                self._renderer,
            )
            images.append(png)
            extras.append(extra)
        extra = dict(extras[0])
        if len(extras) > 1:
            extra["seeds_used"] = [seed + i for i in range(len(extras))]
        return self._result(images, request.prompt, seed, extra)

    async def edit(self, request: EditRequest) -> ProviderResult:
        _check_size(request.width, request.height)
        refs = request.reference_images
        if not 1 <= len(refs) <= MAX_REFERENCES:
            raise InvalidImageRequestError(
                f"edit() got {len(refs)} reference images; pass 1..{MAX_REFERENCES} "
                "(the first is the character's primary anchor)"
            )
        if not 0.0 <= request.edit_strength <= 1.0:
            raise InvalidImageRequestError(
                f"edit_strength={request.edit_strength} must be between 0 (identical) and 1"
            )
        seed = request.seed if request.seed is not None else derive_seed(request.prompt, refs[0])
        try:
            png, extra = await self._render(
                edit_png,
                request.prompt,
                refs,
                request.negative_prompt,
                request.edit_strength,
                seed,
                request.width,
                request.height,
                self._renderer,
            )
        except ReferenceImageError as exc:
            raise InvalidImageRequestError(str(exc)) from exc
        return self._result([png], request.prompt, seed, extra)

    def _result(
        self, images: list[bytes], prompt: str, seed: int, extra: dict[str, object]
    ) -> ProviderResult:
        return ProviderResult(
            images=tuple(images),
            provider=self.name,
            model=OFFLINE_MODEL,
            model_version=self.model_version,
            prompt_sent=prompt,
            seed=seed,
            cost_usd=0.0,
            extra=extra,
        )
