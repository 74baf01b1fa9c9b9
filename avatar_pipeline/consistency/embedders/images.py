"""Decoding image bytes for the embedders (one place, one error message, one decode per call).

Inside ``with decode_once():`` each distinct image is decoded once however many parts of a
scoring call need it (the embedder's forward pass and the pHash copy check); outside it
nothing is kept.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import imagehash
import numpy as np
from PIL import Image, UnidentifiedImageError

_DECODED: ContextVar[dict[str, Image.Image] | None] = ContextVar("_DECODED", default=None)


class UndecodableImageError(ValueError):
    """Image bytes that Pillow cannot decode."""


def image_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@contextmanager
def decode_once() -> Iterator[None]:
    """Share decoded images within this block (this thread/task only); nested blocks reuse."""
    if _DECODED.get() is not None:
        yield
        return
    token = _DECODED.set({})
    try:
        yield
    finally:
        _DECODED.reset(token)


def _decode(data: bytes) -> Image.Image:
    if not data:
        raise UndecodableImageError("image bytes are empty; pass the PNG/JPEG bytes of the asset")
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError) as exc:
        raise UndecodableImageError(
            f"cannot decode image {image_sha256(data)[:12]} ({len(data)} bytes): {exc}; "
            "pass PNG, JPEG or WebP bytes"
        ) from exc
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def decode_rgb(data: bytes) -> Image.Image:
    """Decode PNG/JPEG/WebP bytes to RGB; transparency is flattened onto white.

    Callers must not modify the returned image in place (inside ``decode_once`` it is shared).
    """
    shared = _DECODED.get()
    if shared is None:
        return _decode(data)
    key = image_sha256(data)
    image = shared.get(key)
    if image is None:
        image = shared[key] = _decode(data)
    return image


def phash(image: Image.Image) -> imagehash.ImageHash:
    """64-bit DCT perceptual hash; large images are box-reduced first (same hash, ~6x faster)."""
    factor = min(image.size) // 256
    return imagehash.phash(image.reduce(factor) if factor > 1 else image)


LOCAL_GRID = 16  # cells per side
_LOCAL_SIDE = 64  # grey thumbnail side (4x4 pixels per cell)


def grey_cells(image: Image.Image) -> np.ndarray:
    """Mean grey level of each cell of a LOCAL_GRID x LOCAL_GRID grid over the image."""
    grey = image.convert("L").resize((_LOCAL_SIDE, _LOCAL_SIDE), Image.Resampling.BOX)
    k = _LOCAL_SIDE // LOCAL_GRID
    pixels = np.asarray(grey, dtype=np.float32)
    return pixels.reshape(LOCAL_GRID, k, LOCAL_GRID, k).mean(axis=(1, 3))
