"""Requests, responses and typed errors shared by the ImageService and its providers."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ImageServiceError(RuntimeError):
    """Base of every error the ImageService raises."""


class InvalidImageRequestError(ImageServiceError, ValueError):
    """The request was rejected before any provider was called."""


class ProviderError(ImageServiceError):
    """The provider failed; ``retryable`` says whether trying again may help."""

    retryable: bool = False

    def __init__(self, message: str, *, provider: str = "", prediction_id: str | None = None):
        super().__init__(message)
        self.provider = provider
        self.prediction_id = prediction_id


class ProviderUnavailableError(ProviderError):
    """429 / 5xx / network fault that outlived the retry budget."""

    retryable = True


class ProviderTimeoutError(ProviderError):
    """The prediction outlived our timeout and was canceled."""

    retryable = True


class PredictionFailedError(ProviderError):
    """The provider reported status failed/canceled."""


class SafetyRefusalError(PredictionFailedError):
    """The provider's safety filter refused the prompt or the output."""


class InvalidProviderOutputError(ProviderError):
    """The output could not be downloaded, does not decode, or has the wrong size."""


class BudgetExceededError(ImageServiceError):
    """A per-kit cost budget would be exceeded by another provider call."""


@dataclass(frozen=True)
class GenerateRequest:
    prompt: str
    negative_prompt: str | None = None
    width: int = 1024
    height: int = 1024
    num_images: int = 1
    seed: int | None = None


@dataclass(frozen=True)
class EditRequest:
    prompt: str
    reference_images: tuple[bytes, ...]
    negative_prompt: str | None = None
    edit_strength: float = 0.7
    width: int = 1024
    height: int = 1024
    seed: int | None = None


@dataclass(frozen=True)
class ProviderResult:
    """What a provider returns: PNG bytes plus what it actually ran."""

    images: tuple[bytes, ...]
    provider: str
    model: str
    model_version: str
    prompt_sent: str
    seed: int | None
    cost_usd: float
    prediction_ids: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. how edit_strength was mapped


@dataclass(frozen=True)
class ImageResponse:
    """The result of generate()/edit(): image bytes plus provenance.

    ``to_metadata()`` is what goes into ``generation_metadata`` (never a secret).
    """

    images: tuple[bytes, ...]
    provider: str
    model: str
    model_version: str
    prompt: str
    negative_prompt: str | None
    seed: int | None
    reference_hashes: tuple[str, ...]
    edit_strength: float | None
    width: int
    height: int
    latency_ms: int
    cost_usd: float
    fingerprint: str
    cached: bool = False
    prediction_ids: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def image(self) -> bytes:
        return self.images[0]

    def to_metadata(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("images")
        data["reference_hashes"] = list(self.reference_hashes)
        data["prediction_ids"] = list(self.prediction_ids)
        return data
