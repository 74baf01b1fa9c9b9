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
# Since CLIP embeds the isolated character crop (openclip.character_crop), this mark has NOT been
# re-derived: no CLIP weights may be downloaded here. With weights on disk, re-derive it with
# `avatar-pipeline consistency pairs bench/eval_set/pairs.csv --embedder clip --calibrate F`.
CLIP_IDENTITY_MIN = 0.80

# Perceptual embedder (character-lab-bust-v5: fine colour density of the ISOLATED character's
# bust, i.e. down to 1.5 face heights below the chin whatever the framing, the head above its
# face, a face-width-normalised head crop: hair around the face, eye chroma, and kernel blocks for
# skin tone and eye colour, see perceptual.py), derived on bench/eval_set (bench/make_eval_set.py:
# two independent renderers, 12 families of 4 characters sharing hair/outfit colours, random
# backgrounds, lighting, framing). The rule: the mark, to 3 decimals, that best meets issue 8's
# targets at once (smallest max(FAR / 3 %, FRR / 5 %), evaluation.target_threshold) on all 720
# pairs: 0.858. What the rule is worth on pairs it did not see (bench_gate.py prints it):
#   leave-one-family-out (12 folds, marks 0.853-0.863): FAR 2.5 %, FRR 4.2 %
#   leave-one-renderer-out (the offline renderer's mark judged on renderer b, and the other way
#   round): both folds choose 0.858; FAR 2.5 %, FRR 4.2 %
#   nested leave-one-family-out (bust depth, skin sigma and mark all chosen without the family,
#   bench_gate.py --nested): FAR 2.7 %, FRR 5.0 % -- on the FRR target, not under it
#   all (720 pairs) at 0.858: AUC 0.994 (hard negatives 0.990); FAR 2.5 %, FRR 4.2 %
# The earlier rule (a mark set on a calibration split of offline families 0-2 only) landed high
# for renderer b and the other families: v4's 0.858 gave FRR 7.5 %; for v5 it would choose 0.876
# (FRR 8.8 %, FAR 1.7 %). Residue: full-body poses (FRR 8.3 %) whose face is a few pixels wide or
# found on skin-hued hair, and twins sharing hair and outfit colour (FAR 14.6 % on hard_both, 48
# pairs). Offline kits (test_gate_end_to_end, test_kit_images, bench/offline_kit_scores.py) pass
# at this mark. Previous: character-lab-head-v4 at 0.858 (AUC 0.993, FRR 7.5 %, FAR 1.9 %);
# -head-v3 at 0.828 (AUC 0.989, FRR 5.4 %, FAR 4.4 %); -face-v2 at 0.84 (AUC 0.978, FRR 5.8 %,
# FAR 11.0 %); the old frame embedder had AUC 0.82 and followed the background.
PERCEPTUAL_IDENTITY_MIN = 0.858

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
# the anchor's callout exceeds this. Measured on bench/eval_set (bench_gate.py --palette):
# same-character callouts (calib split) p99: hair 11.6, skin 10.1, outfit 9.1, accent 10.9,
# eyes 18.7 (small, and closed in some expressions: their own, looser limit); another
# character's hair median 11-14, outfit 11-12. A drift alarm, not an identity test.
PALETTE_MAX_DELTA_E = 12.0
PALETTE_MAX_DELTA_E_EYES = 20.0
