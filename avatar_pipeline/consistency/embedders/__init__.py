"""Embedders for consistency scores: OpenCLIP with local weights, or the perceptual fallback."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from avatar_pipeline.consistency.embedders.images import UndecodableImageError, decode_rgb
from avatar_pipeline.consistency.embedders.openclip import (
    ALLOW_DOWNLOAD_ENV,
    EmbedderUnavailableError,
    OpenClipEmbedder,
    clear_clip_registry,
    downloads_allowed,
    loaded_clip_models,
)
from avatar_pipeline.consistency.embedders.perceptual import PERCEPTUAL_MODEL, PerceptualEmbedder
from avatar_pipeline.consistency.embedders.thresholds import (
    DEFAULT_THRESHOLDS,
    thresholds_for,
)
from avatar_pipeline.consistency.embedders.weights import WeightsStatus, find_clip_weights
from avatar_pipeline.consistency.types import Embedder

if TYPE_CHECKING:
    from avatar_pipeline.settings import Settings

logger = logging.getLogger(__name__)

EmbedderKind = Literal["auto", "clip", "perceptual"]

__all__ = [
    "ALLOW_DOWNLOAD_ENV",
    "DEFAULT_THRESHOLDS",
    "PERCEPTUAL_MODEL",
    "EmbedderKind",
    "EmbedderUnavailableError",
    "OpenClipEmbedder",
    "PerceptualEmbedder",
    "UndecodableImageError",
    "WeightsStatus",
    "clear_clip_registry",
    "decode_rgb",
    "embedder_from_settings",
    "find_clip_weights",
    "load_embedder",
    "loaded_clip_models",
    "thresholds_for",
]


def _resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_embedder(
    kind: EmbedderKind = "auto",
    *,
    model_name: str = "ViT-B-32",
    pretrained: str = "laion2b_s34b_b79k",
    device: str = "cpu",
    cache_dir: str | Path | None = None,
    batch_size: int = 16,
) -> Embedder:
    """``clip`` (or EmbedderUnavailableError), ``perceptual``, or ``auto``: CLIP when its
    weights load here, the perceptual embedder otherwise (logged, and recorded in every score's
    EmbedderInfo)."""
    if kind == "perceptual":
        logger.info("consistency embedder: perceptual (%s), as configured", PERCEPTUAL_MODEL)
        return PerceptualEmbedder()
    if kind not in ("auto", "clip"):
        raise ValueError(f"unknown embedder kind {kind!r}; expected 'auto', 'clip' or 'perceptual'")
    if kind == "auto" and not downloads_allowed():
        # Files only, no torch import: without weights on disk, auto costs nothing extra.
        status = find_clip_weights(model_name, pretrained, cache_dir)
        if not status.available:
            logger.warning(
                "consistency embedder: OpenCLIP %s (weights %r) is unavailable, falling back to "
                "the perceptual embedder (%s); scores use perceptual thresholds. Reason: %s",
                model_name,
                pretrained,
                PERCEPTUAL_MODEL,
                status.reason,
            )
            return PerceptualEmbedder()
    try:
        embedder = OpenClipEmbedder(
            model_name=model_name,
            pretrained=pretrained,
            device=_resolve_device(device),
            cache_dir=cache_dir,
            batch_size=batch_size,
        )
    except EmbedderUnavailableError as exc:
        if kind == "clip":
            raise
        logger.warning(
            "consistency embedder: OpenCLIP %s (weights %r) is unavailable, falling back to the "
            "perceptual embedder (%s); scores use perceptual thresholds. Reason: %s",
            model_name,
            pretrained,
            PERCEPTUAL_MODEL,
            exc,
        )
        return PerceptualEmbedder()
    logger.info(
        "consistency embedder: OpenCLIP %s (weights %r) on %s", model_name, pretrained, device
    )
    return embedder


def embedder_from_settings(settings: Settings, *, with_cache: bool = True) -> Embedder:
    """The embedder the settings ask for, wrapped in the on-disk embedding cache by default."""
    embedder = load_embedder(
        settings.embedder,
        model_name=settings.clip_model,
        pretrained=settings.clip_pretrained,
        device=settings.clip_device,
    )
    if not with_cache:
        return embedder
    from avatar_pipeline.consistency.cache import CachedEmbedder, EmbeddingCache

    return CachedEmbedder(embedder, EmbeddingCache(settings.embedding_cache_dir))
