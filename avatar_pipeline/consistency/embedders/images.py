"""Decoding image bytes for the embedders (one place, one error message)."""

from __future__ import annotations

import hashlib
import io

from PIL import Image, UnidentifiedImageError


class UndecodableImageError(ValueError):
    """Image bytes that Pillow cannot decode."""


def image_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def decode_rgb(data: bytes) -> Image.Image:
    """Decode PNG/JPEG/WebP bytes to RGB; transparency is flattened onto white."""
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
