"""Pass marks per embedder: a CLIP cosine and a perceptual cosine are different scales."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from avatar_pipeline.consistency.types import EmbedderInfo, Thresholds

# CLIP-I (DreamBooth, Ruiz et al. 2023): real photos of the same subject score ≈ 0.885 with
# ViT-B/32, DreamBooth's generations ≈ 0.80; below 0.80 a character visibly drifts.
CLIP_IDENTITY_MIN = 0.80

# Perceptual embedder (phash+colorhash+hsv-v1), calibrated on the offline provider: 12 kits made
# with the pipeline's own prompts (domain.prompts: portrait by generate(), full body, 8
# expressions and 4 poses by edit()), anime/watercolor/realistic/pixel styles and palettes,
# 1024 px (512 px agrees within 0.01). Cosine to the kit's portrait anchor:
#   same kit, expression edits           n=96    min 0.939  p5 0.948  median 0.977
#   same kit, full body + pose edits     n=60    min 0.845  p5 0.854  median 0.919
#   same kit prompts, another seed       n=24    max 0.699  p95 0.689 median 0.484  (a re-roll)
#   other kits' images                   n=1848  max 0.640  p95 0.486 median 0.266
# Held out (the renderer called directly, 12 other prompts and seeds, 1024 px): same character
# min 0.931 (expressions) and 0.803 (full body, poses); other characters max 0.762, p95 0.471;
# same prompt with another seed max 0.757. 0.78 passes every same-character image measured and
# fails every other character; the held-out margin is thin (0.02) for a full-body image of a
# character whose palette is close to another's. This is the fallback for machines without
# CLIP weights: it tells characters apart by their colours and does not understand faces.
PERCEPTUAL_IDENTITY_MIN = 0.78

# Copy check: a derived image is a copy of its reference when the 64-bit pHash distance is at
# most COPY_MAX_HAMMING *and* no cell of a 16x16 grid changed by more than
# COPY_MAX_LOCAL_DIFFERENCE grey levels (0-255). Measured on the same offline kits:
#   copies (identical, JPEG q85/q60, half size + JPEG q90)  pHash <= 8; local <= 1.7
#   expression edits vs the portrait                        pHash 0-16, median 14 (6 of 96
#                                                           within 4: pHash alone would call
#                                                           them copies); local >= 8.0
#   pose edits vs the full body                             pHash median 17; local >= 15, but
#                                                           0.9 once: a "standing" take that
#                                                           reproduced the full-body anchor
COPY_MAX_HAMMING = 10
COPY_MAX_LOCAL_DIFFERENCE = 4.0

DEFAULT_THRESHOLDS: dict[str, Thresholds] = {
    "clip": Thresholds(CLIP_IDENTITY_MIN, COPY_MAX_HAMMING, COPY_MAX_LOCAL_DIFFERENCE),
    "perceptual": Thresholds(PERCEPTUAL_IDENTITY_MIN, COPY_MAX_HAMMING, COPY_MAX_LOCAL_DIFFERENCE),
}

_FIELDS = {"identity_min": float, "copy_max_hamming": int, "copy_max_local_difference": float}


THRESHOLDS_FILE_ENV = "AVATAR_THRESHOLDS_FILE"


def _file_overrides(thresholds_file: str | Path | None) -> Mapping[str, Any] | None:
    path = thresholds_file or os.environ.get(THRESHOLDS_FILE_ENV) or None
    if not path:
        return None
    from avatar_pipeline.consistency.evaluation import load_thresholds_file

    return load_thresholds_file(path)


def _apply(base: Thresholds, info: EmbedderInfo, overrides: Mapping[str, Any]) -> Thresholds:
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


def thresholds_for(
    info: EmbedderInfo,
    overrides: Mapping[str, Any] | None = None,
    *,
    thresholds_file: str | Path | None = None,
) -> Thresholds:
    """Default thresholds for the embedder that produced the scores, with optional overrides.

    ``overrides`` is either flat (``{"identity_min": 0.85}``) or per embedder kind
    (``{"clip": {"identity_min": 0.85}, "perceptual": {"copy_max_hamming": 6}}``). A thresholds
    file (``thresholds_file``, else the ``AVATAR_THRESHOLDS_FILE`` environment variable; the
    format ``consistency pairs --calibrate`` writes, per embedder kind) applies first, explicit
    ``overrides`` after it.
    """
    base = DEFAULT_THRESHOLDS.get(info.kind)
    if base is None:
        raise ValueError(
            f"no default thresholds for embedder kind {info.kind!r}; known kinds: "
            f"{sorted(DEFAULT_THRESHOLDS)}"
        )
    from_file = _file_overrides(thresholds_file)
    if from_file and (info.kind in from_file or not set(from_file) & set(DEFAULT_THRESHOLDS)):
        base = _apply(base, info, from_file)
    if not overrides:
        return base
    return _apply(base, info, overrides)


# Palette contract (consistency.palette): a key colour drifts when its CIEDE2000 distance to
# the anchor's callout exceeds this. Derived on bench/eval_set (see notes below PALETTE_...).
PALETTE_MAX_DELTA_E = 12.0
PALETTE_MAX_DELTA_E_EYES = 20.0
