"""A weight-free embedder: perceptual hash, colour hash and colour histograms in one vector.

Each block is L2-normalised and scaled by its weight, and the whole vector is L2-normalised, so
the cosine similarity of two embeddings is the weight²-averaged cosine of its blocks:

- ``phash``: 16x16 DCT perceptual hash as ±1 (layout and shape; unrelated images ≈ 0),
- ``colorhash``: imagehash's colour hash as ±1 (hue/saturation proportions),
- ``hsv``: joint hue x saturation x value histogram (12x4x4), square-rooted, so its block
  cosine is the Bhattacharyya coefficient of the two colour distributions,
- ``hsv_fine``: a finer histogram (18x4x4) raised to the power 1/4, so small areas of a
  colour (eyes, a ribbon) count almost as much as large ones: which colours are present,
- ``vivid``: a histogram (18x3x3, square-rooted) of the saturated, bright pixels only, so
  an orange jacket and a purple one differ even when black hair fills most of both images.

The histograms cover the whole image, not a central crop: the portrait anchor and a full-body
pose show the same hair, skin, outfit and background colours in different proportions, and the
layout-bound pHash alone cannot tell a new framing from a new character. The weights were
chosen on offline-provider renders (numbers in ``thresholds.py``). It has no text
tower, so expression adherence cannot be scored with it.
"""

from __future__ import annotations

import imagehash
import numpy as np
from PIL import Image

from avatar_pipeline.consistency.embedders.images import decode_rgb
from avatar_pipeline.consistency.types import EmbedderInfo

PERCEPTUAL_MODEL = "phash+colorhash+hsv-v1"

# Block weights (relative; squared weights are each block's share of the cosine).
BLOCK_WEIGHTS: dict[str, float] = {
    "phash": 0.3,
    "colorhash": 0.3,
    "hsv": 1.0,
    "hsv_fine": 1.0,
    "vivid": 1.0,
}

_PHASH_SIZE = 16
_COLORHASH_BINBITS = 3
_HSV_BINS = (12, 4, 4)
_HSV_FINE_BINS = (18, 4, 4)
_VIVID_BINS = (18, 3, 3)
_VIVID_MIN = 0.25  # saturation x value (0-1) above which a pixel counts as a vivid colour
_VIVID_FULL_WEIGHT_AT = 0.05  # fraction of vivid pixels from which the vivid block counts fully
_WORKING_SIDE = 512  # hashes and histograms are computed on a copy at most this large


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def _bits(hash_value: imagehash.ImageHash) -> np.ndarray:
    return np.where(hash_value.hash.flatten(), 1.0, -1.0)


def _hsv_histogram(
    hsv: np.ndarray, bins: tuple[int, int, int], power: float, mask: np.ndarray | None = None
) -> np.ndarray:
    sizes = np.asarray(bins)
    idx = (hsv * sizes) // 256  # per-channel bin index
    flat = (idx[..., 0] * sizes[1] + idx[..., 1]) * sizes[2] + idx[..., 2]
    weights = None if mask is None else mask.ravel().astype(np.float64)
    counts = np.bincount(flat.ravel(), weights=weights, minlength=int(np.prod(sizes)))
    return (counts.astype(np.float64) / max(float(counts.sum()), 1.0)) ** power


class PerceptualEmbedder:
    """Perceptual-hash and colour embedding; no weights, no text tower."""

    info = EmbedderInfo("perceptual", PERCEPTUAL_MODEL, "none")
    cache_key = f"perceptual|{PERCEPTUAL_MODEL}|{sorted(BLOCK_WEIGHTS.items())}"

    @property
    def has_text_tower(self) -> bool:
        return False

    def embed_one(self, image: Image.Image) -> np.ndarray:
        small = image.copy()
        small.thumbnail((_WORKING_SIDE, _WORKING_SIDE), Image.Resampling.BILINEAR)
        hsv = np.asarray(small.convert("HSV"), dtype=np.int64)
        vivid = hsv[..., 1] * hsv[..., 2] > _VIVID_MIN * 255 * 255
        blocks = {
            "phash": _bits(imagehash.phash(small, hash_size=_PHASH_SIZE)),
            "colorhash": _bits(imagehash.colorhash(small, binbits=_COLORHASH_BINBITS)),
            "hsv": _hsv_histogram(hsv, _HSV_BINS, 0.5),
            "hsv_fine": _hsv_histogram(hsv, _HSV_FINE_BINS, 0.25),
            "vivid": _hsv_histogram(hsv, _VIVID_BINS, 0.5, vivid),
        }
        # A handful of vivid pixels (a blush on a pastel character) is no colour signature:
        # the vivid block fades out below _VIVID_FULL_WEIGHT_AT of the image.
        scale = {"vivid": min(1.0, float(vivid.mean()) / _VIVID_FULL_WEIGHT_AT)}
        vector = np.concatenate(
            [BLOCK_WEIGHTS[k] * scale.get(k, 1.0) * _unit(v) for k, v in blocks.items()]
        )
        return _unit(vector).astype(np.float32)

    def embed_images(self, images: list[bytes]) -> np.ndarray:
        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self.embed_one(decode_rgb(data)) for data in images])

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError(
            "the perceptual embedder has no text tower; check has_text_tower before embed_texts"
        )

    @property
    def dim(self) -> int:
        return (
            _PHASH_SIZE**2
            + 14 * _COLORHASH_BINBITS
            + int(np.prod(_HSV_BINS))
            + int(np.prod(_HSV_FINE_BINS))
            + int(np.prod(_VIVID_BINS))
        )
