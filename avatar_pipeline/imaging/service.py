"""ImageService: ``generate()`` (text-to-image) and ``edit()`` (reference-based) over a provider.

Every call is validated before any provider is touched, answered from the idempotent cache when
an identical seeded request was already paid for, and otherwise sent to the provider under the
per-process concurrency and predictions-per-minute limits (see ``limits.py``). The service keeps
no asyncio object bound to one event loop, so it may be called from successive ``asyncio.run``
loops (Dagster steps) or from loops in several threads.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from avatar_pipeline.imaging.cache import ImageCache, request_fingerprint
from avatar_pipeline.imaging.limits import shared_limits
from avatar_pipeline.imaging.providers.base import ImageProvider
from avatar_pipeline.imaging.types import (
    EditRequest,
    GenerateRequest,
    ImageResponse,
    InvalidProviderOutputError,
    ProviderResult,
)
from avatar_pipeline.imaging.validation import validate_edit, validate_generate

if TYPE_CHECKING:
    from avatar_pipeline.imaging.limits import InstanceBudget

logger = logging.getLogger(__name__)

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class ImageService:
    """Generates and edits images through one provider, with limits and a request cache."""

    def __init__(
        self,
        provider: ImageProvider,
        *,
        cache: ImageCache | None = None,
        max_concurrency: int = 8,
        predictions_per_minute: int = 600,
        budget: InstanceBudget | None = None,
    ) -> None:
        self.provider = provider
        self.cache = cache
        # fleet: ``budget`` (optional) caps calls in flight and creates/minute instance-wide
        self.limits = shared_limits(provider.name, max_concurrency, predictions_per_minute, budget)
        self._version_lookups: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[tuple[str, int], asyncio.Task[tuple[str, str]]]
        ] = weakref.WeakKeyDictionary()

    def __repr__(self) -> str:
        return (
            f"ImageService(provider={self.provider.name!r}, cache={self.cache!r}, "
            f"max_concurrency={self.limits.concurrency.limit}, "
            f"predictions_per_minute={self.limits.rate.limit})"
        )

    async def generate(
        self,
        prompt: str,
        negative_prompt: str | None = None,
        width: int = 1024,
        height: int = 1024,
        num_images: int = 1,
        *,
        seed: int | None = None,
    ) -> ImageResponse:
        """Text-to-image. A ``seed`` makes the request reproducible and cacheable."""
        started = time.perf_counter()
        request = GenerateRequest(prompt, negative_prompt, width, height, num_images, seed)
        validate_generate(request)
        return await self._run(
            "generate",
            started=started,
            prompt=prompt,
            negative_prompt=negative_prompt,
            reference_hashes=(),
            seed=seed,
            width=width,
            height=height,
            edit_strength=None,
            num_images=num_images,
            call=lambda: self.provider.generate(request),
        )

    async def edit(
        self,
        prompt: str,
        reference_images: list[bytes],
        negative_prompt: str | None = None,
        edit_strength: float = 0.7,
        width: int = 1024,
        height: int = 1024,
        *,
        seed: int | None = None,
    ) -> ImageResponse:
        """Reference-based edit: the character of ``reference_images`` stays consistent.

        ``edit_strength`` is how much to change (0 = keep the reference, 1 = ignore it); how a
        provider honours it is recorded in ``extra['edit_strength_mapping']``.
        """
        started = time.perf_counter()
        refs = tuple(reference_images) if reference_images is not None else ()
        request = EditRequest(prompt, refs, negative_prompt, edit_strength, width, height, seed)
        # Decodes each reference not seen before: off the event loop when there is work to do.
        references = await asyncio.to_thread(validate_edit, request)
        return await self._run(
            "edit",
            started=started,
            prompt=prompt,
            negative_prompt=negative_prompt,
            reference_hashes=tuple(info.sha256 for info in references),
            seed=seed,
            width=width,
            height=height,
            edit_strength=float(edit_strength),
            num_images=1,
            call=lambda: self.provider.edit(request),
        )

    async def latest_model_versions(self) -> dict[str, str]:
        """Model id -> newest version the provider offers (a change means an upgrade)."""
        return await self.provider.latest_model_versions()

    async def aclose(self) -> None:
        await self.provider.aclose()

    async def _run(
        self,
        operation: str,
        *,
        started: float,
        prompt: str,
        negative_prompt: str | None,
        reference_hashes: tuple[str, ...],
        seed: int | None,
        width: int,
        height: int,
        edit_strength: float | None,
        num_images: int,
        call: Callable[[], Awaitable[ProviderResult]],
    ) -> ImageResponse:
        def fingerprint(model: str, model_version: str) -> str:
            return request_fingerprint(
                provider=self.provider.name,
                model=model,
                model_version=model_version,
                operation=operation,
                prompt=prompt,
                negative_prompt=negative_prompt,
                reference_hashes=reference_hashes,
                seed=seed,
                width=width,
                height=height,
                edit_strength=edit_strength,
                num_images=num_images,
            )

        # The version must be known BEFORE the call: an upgraded model is a different request.
        cacheable = self.cache is not None and seed is not None
        model, model_version = await self._model_for(operation, len(reference_hashes))
        if cacheable:
            hit = await self._cached(fingerprint(model, model_version), started)
            if hit is not None:
                return hit

        async with self.limits.concurrency.slot():
            queued_ms = (time.perf_counter() - started) * 1000
            rate_wait_s = await self.limits.rate.acquire(num_images)
            async with self.limits.instance_slot(num_images) as budget_wait_s:
                rate_wait_s += budget_wait_s
                result = await call()
        expected = num_images
        if len(result.images) != expected or not all(
            image.startswith(_PNG_SIGNATURE) for image in result.images
        ):
            raise InvalidProviderOutputError(
                f"{result.provider} returned {len(result.images)} image(s) for a request of "
                f"{expected}, or non-PNG bytes; this is a provider bug, retry or report it",
                provider=result.provider,
            )
        extra: dict[str, Any] = dict(result.extra)
        extra["queue_wait_ms"] = round(queued_ms)
        extra["rate_limit_wait_ms"] = round(rate_wait_s * 1000)
        response = ImageResponse(
            images=result.images,
            provider=result.provider,
            model=result.model,
            model_version=result.model_version,
            prompt=result.prompt_sent,
            negative_prompt=negative_prompt,
            seed=result.seed,
            reference_hashes=reference_hashes,
            edit_strength=edit_strength,
            width=width,
            height=height,
            latency_ms=round((time.perf_counter() - started) * 1000),
            cost_usd=result.cost_usd,
            # What actually ran: a lookup next time asks model_for(), which now knows it.
            fingerprint=fingerprint(result.model, result.model_version),
            cached=False,
            prediction_ids=result.prediction_ids,
            extra=extra,
        )
        if cacheable and self.cache is not None:
            try:
                await asyncio.to_thread(self.cache.put, response)
            except OSError as exc:  # a full disk must not lose an image we already paid for
                logger.warning("could not store %s in the image cache: %s", operation, exc)
        logger.info(
            "%s via %s %s@%s: %d ms, $%.3f, fingerprint %s",
            operation,
            response.provider,
            response.model,
            response.model_version,
            response.latency_ms,
            response.cost_usd,
            response.fingerprint[:12],
        )
        return response

    async def _model_for(
        self, operation: str, reference_count: int, *, look_up: bool = True
    ) -> tuple[str, str]:
        """The model and the real version a call would use: the version goes into the request
        fingerprint BEFORE the call (an upgraded model is a different request) and into the
        provenance. Concurrent first calls on one loop share one lookup."""
        loop = asyncio.get_running_loop()
        key = (operation, reference_count)
        lookups = self._version_lookups.setdefault(loop, {})
        lookup = lookups.get(key)
        if lookup is None:
            lookup = loop.create_task(
                self.provider.current_model_version(operation, reference_count)
            )
            lookups[key] = lookup
            lookup.add_done_callback(lambda _t: lookups.pop(key, None))
        return await asyncio.shield(lookup)

    async def _cached(self, fingerprint: str, started: float) -> ImageResponse | None:
        assert self.cache is not None
        entry = await asyncio.to_thread(self.cache.get, fingerprint)
        if entry is None:
            return None
        meta = entry.metadata
        extra = dict(meta.get("extra") or {})
        extra["original_cost_usd"] = meta["cost_usd"]
        extra["original_latency_ms"] = meta["latency_ms"]
        logger.info("cache hit %s (%s)", fingerprint[:12], meta["model"])
        return ImageResponse(
            images=entry.images,
            provider=meta["provider"],
            model=meta["model"],
            model_version=meta["model_version"],
            prompt=meta["prompt"],
            negative_prompt=meta["negative_prompt"],
            seed=meta["seed"],
            reference_hashes=tuple(meta["reference_hashes"]),
            edit_strength=meta["edit_strength"],
            width=meta["width"],
            height=meta["height"],
            latency_ms=round((time.perf_counter() - started) * 1000),
            cost_usd=0.0,
            fingerprint=fingerprint,
            cached=True,
            prediction_ids=tuple(meta.get("prediction_ids") or ()),
            extra=extra,
        )
