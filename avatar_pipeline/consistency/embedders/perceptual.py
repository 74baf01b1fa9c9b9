"""A weight-free embedder: perceptual hash, colour hash and colour statistics in one vector.

Each block is L2-normalised and scaled by its weight, and the whole vector is L2-normalised, so
the cosine similarity of two embeddings is the weight²-averaged cosine of their blocks:

- ``phash``: 16x16 DCT perceptual hash as ±1 (layout and shape; unrelated images ≈ 0),
- ``colorhash``: imagehash's colour hash as ±1 (hue/saturation proportions),
- ``hsv``: joint hue x saturation x value histogram of the central crop, square-rooted
  (so the block cosine is the Bhattacharyya coefficient of the two histograms),
- ``layout``: mean RGB of a 4x4 grid over the central crop, centred on mid-grey,
  plus per-channel mean/std of the crop.

It has no text tower, so expression adherence cannot be scored with it.
"""

from __future__ import annotations

import imagehash
import numpy as np
from PIL import Image

from avatar_pipeline.consistency.embedders.images import decode_rgb
from avatar_pipeline.consistency.types import EmbedderInfo

PERCEPTUAL_MODEL = "phash+colorhash+hsv-v1"

# Block weights (relative; squared weights are the share of each block in the cosine).
BLOCK_WEIGHTS: dict[str, float] = {"phash": 1.0, "colorhash": 0.6, "hsv": 1.0, "layout": 0.8}

_PHASH_SIZE = 16
_COLORHASH_BINBITS = 3
_HSV_BINS = (12, 4, 4)
_CENTRAL_CROP = 0.7  # fraction of width/height kept around the centre for colour blocks
_LAYOUT_GRID = 4


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def _central_crop(image: Image.Image) -> Image.Image:
    width, height = image.size
    dx, dy = int(width * (1 - _CENTRAL_CROP) / 2), int(height * (1 - _CENTRAL_CROP) / 2)
    return image.crop((dx, dy, width - dx, height - dy))


def _bits(hash_value: imagehash.ImageHash) -> np.ndarray:
    return np.where(hash_value.hash.flatten(), 1.0, -1.0)


def _hsv_histogram(crop: Image.Image) -> np.ndarray:
    hsv = np.asarray(crop.convert("HSV"), dtype=np.int64)
    bins = np.asarray(_HSV_BINS)
    idx = (hsv * bins) // 256  # per-channel bin index
    flat = (idx[..., 0] * bins[1] + idx[..., 1]) * bins[2] + idx[..., 2]
    counts = np.bincount(flat.ravel(), minlength=int(np.prod(bins))).astype(np.float64)
    return np.sqrt(counts / max(counts.sum(), 1.0))


def _layout(crop: Image.Image) -> np.ndarray:
    grid = np.asarray(crop.resize((_LAYOUT_GRID, _LAYOUT_GRID), Image.Resampling.BOX), np.float64)
    pixels = np.asarray(crop, dtype=np.float64).reshape(-1, 3)
    stats = np.concatenate([pixels.mean(axis=0), pixels.std(axis=0) * 2])
    return np.concatenate([grid.ravel(), stats]) / 255.0 - 0.5


class PerceptualEmbedder:
    """Perceptual-hash and colour embedding; no weights, no text tower."""

    info = EmbedderInfo("perceptual", PERCEPTUAL_MODEL, "none")
    cache_key = f"perceptual|{PERCEPTUAL_MODEL}|{sorted(BLOCK_WEIGHTS.items())}"

    @property
    def has_text_tower(self) -> bool:
        return False

    def embed_one(self, image: Image.Image) -> np.ndarray:
        small = image.copy()
        small.thumbnail((512, 512), Image.Resampling.BILINEAR)  # hashes downsample anyway
        crop = _central_crop(small)
        blocks = {
            "phash": _bits(imagehash.phash(small, hash_size=_PHASH_SIZE)),
            "colorhash": _bits(imagehash.colorhash(small, binbits=_COLORHASH_BINBITS)),
            "hsv": _hsv_histogram(crop),
            "layout": _layout(crop),
        }
        vector = np.concatenate([BLOCK_WEIGHTS[k] * _unit(v) for k, v in blocks.items()])
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
            + (3 * _LAYOUT_GRID**2 + 6)
        )
