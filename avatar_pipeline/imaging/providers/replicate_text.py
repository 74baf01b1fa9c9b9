"""Language-model predictions on Replicate through the ReplicateProvider's plumbing.

The scene writer runs a language model (``meta/meta-llama-3-8b-instruct`` by default) with the
same ``replicate`` client, token handling (scrubbed from every message), create retries
(429 ``Retry-After``, 5xx, timeouts, an HTML error page), polling and cancel-on-timeout as the
image calls. What differs is the output: a language model streams its answer, so a finished
prediction's ``output`` is a list of text chunks to concatenate (Replicate's
``x-cog-array-display: concatenate``), or occasionally one string.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from avatar_pipeline.concurrency import within
from avatar_pipeline.imaging.types import InvalidProviderOutputError, ProviderTimeoutError

if TYPE_CHECKING:
    from avatar_pipeline.imaging.providers.replicate import ReplicateProvider

MAX_TEXT_CHARS = 64_000


@dataclass(frozen=True)
class TextPrediction:
    """A finished language-model prediction."""

    text: str
    model: str
    model_version: str
    prediction_id: str
    create_attempts: int
    latency_ms: int
    metrics: dict[str, Any] = field(default_factory=dict)

    def to_metadata(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "model_version": self.model_version,
            "prediction_id": self.prediction_id,
            "create_attempts": self.create_attempts,
            "latency_ms": self.latency_ms,
            "metrics": dict(self.metrics),
        }


def output_text(output: Any, *, prediction_id: str, model: str, provider: str) -> str:
    """A language model's output as one string: chunks concatenated, or the string itself."""
    if isinstance(output, str):
        text = output
    elif isinstance(output, list) and all(isinstance(chunk, str) for chunk in output):
        text = "".join(output)
    else:
        raise InvalidProviderOutputError(
            f"prediction {prediction_id} on {model} returned {output!r:.200}, not text",
            provider=provider,
            prediction_id=prediction_id,
        )
    if not text.strip():
        raise InvalidProviderOutputError(
            f"prediction {prediction_id} on {model} returned an empty answer",
            provider=provider,
            prediction_id=prediction_id,
        )
    return text[:MAX_TEXT_CHARS]


async def run_text_prediction(
    provider: ReplicateProvider,
    model: str,
    model_input: dict[str, Any],
    *,
    timeout_s: float | None = None,
) -> TextPrediction:
    """Create a prediction on ``model``, wait for it (at most ``timeout_s``, else it is
    canceled and ProviderTimeoutError raised) and return its text."""
    started = time.monotonic()
    deadline_s = min(timeout_s or provider.timeout_s, provider.timeout_s)
    clients = provider._loop_clients()
    version = provider.pinned_versions.get(model)
    wait = max(0, min(60, int(min(provider.prefer_wait_s, deadline_s))))
    limit = wait + provider.http_timeout_s

    def create() -> Any:
        if version:
            request = clients.api.predictions.async_create(
                version=version, input=model_input, wait=wait or False
            )
        else:
            request = clients.api.models.predictions.async_create(
                model=model, input=model_input, wait=wait or False
            )
        return within(request, limit)

    prediction, attempts = await provider._with_retries(
        f"create a prediction on {model}", model, create, count_attempts=True
    )
    remaining = max(0.05, deadline_s - (time.monotonic() - started))
    try:
        prediction = await within(
            provider._until_done(clients, prediction, model, time.monotonic()), remaining
        )
    except TimeoutError:
        await provider._cancel(clients, prediction.id)
        raise ProviderTimeoutError(
            f"prediction {prediction.id} on {model} did not finish within {deadline_s:g} s and "
            "was canceled",
            provider=provider.name,
            prediction_id=prediction.id,
        ) from None
    except asyncio.CancelledError:
        await provider._cancel(clients, prediction.id)
        raise
    provider._raise_if_unsuccessful(prediction, model)
    text = output_text(
        prediction.output, prediction_id=prediction.id, model=model, provider=provider.name
    )
    metrics = {
        k: v
        for k, v in (prediction.metrics or {}).items()
        if k in ("predict_time", "input_token_count", "output_token_count", "tokens_per_second")
    }
    return TextPrediction(
        text=text,
        model=model,
        model_version=version or str(prediction.version or "unknown"),
        prediction_id=prediction.id,
        create_attempts=attempts,
        latency_ms=round((time.monotonic() - started) * 1000),
        metrics=metrics,
    )
