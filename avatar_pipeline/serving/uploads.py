"""Validation of uploaded images: decoded by Pillow (never trusted by name), bounded in bytes
and pixels, re-encoded to PNG. Nothing here touches the catalog or the store."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import BinaryIO, Final

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

ALLOWED_FORMATS: Final[dict[str, str]] = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "WEBP": "image/webp",
}
DEFAULT_MAX_UPLOAD_BYTES: Final[int] = 10 * 1024 * 1024
DEFAULT_MAX_UPLOAD_PIXELS: Final[int] = 40_000_000  # e.g. 6324 x 6324; far below a bomb
_READ_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class UploadLimits:
    max_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    max_pixels: int = DEFAULT_MAX_UPLOAD_PIXELS


class UploadRejectedError(ValueError):
    """The upload is not an image we accept; ``status_code`` is the HTTP status to answer."""

    status_code = 422


class UploadTooLargeError(UploadRejectedError):
    status_code = 413


@dataclass(frozen=True)
class NormalizedImage:
    """An accepted upload, re-encoded as PNG."""

    png: bytes
    width: int
    height: int
    source_format: str
    source_bytes: int


def read_limited(stream: BinaryIO, max_bytes: int, filename: str | None = None) -> bytes:
    """Read at most ``max_bytes``; one byte more raises UploadTooLargeError (413)."""
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = stream.read(min(_READ_CHUNK, max_bytes + 1 - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
        if total > max_bytes:
            raise UploadTooLargeError(
                f"upload {filename or ''!r} is larger than the limit of {max_bytes} bytes; "
                "resize or compress it and upload again"
            )
    return b"".join(chunks)


WIDE_INTEGER_MODES: Final = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N"})
"""Modes Pillow decodes a 16-bit grayscale PNG to; their values go up to 65535."""


def to_8bit(image: Image.Image) -> Image.Image:
    """Scale a 16-bit grayscale image to 8 bits (``L``/``LA``), keeping its tones.

    Pillow's own ``convert`` clips wide integer values at 255, so a 16-bit grayscale PNG would
    keep only 0 and 255. Other modes (including 16-bit RGB(A), which Pillow already decodes to
    8 bits per channel) are returned unchanged. A 16-bit ``tRNS`` grey value becomes alpha.
    """
    if image.mode not in WIDE_INTEGER_MODES:
        return image
    wide = np.asarray(image.convert("I"), dtype=np.int64)
    gray = Image.fromarray(((np.clip(wide, 0, 65535) * 255 + 32767) // 65535).astype(np.uint8))
    transparent = image.info.get("transparency")
    if isinstance(transparent, int):
        alpha = Image.fromarray(np.where(wide == transparent, 0, 255).astype(np.uint8))
        return Image.merge("LA", (gray, alpha))
    return gray


def normalize_image(
    data: bytes, limits: UploadLimits, filename: str | None = None
) -> NormalizedImage:
    """Decode ``data`` as a still PNG, JPEG or WebP image and re-encode it as PNG.

    Raises UploadRejectedError (422) for anything else: not an image, another format, an
    animation, more pixels than ``limits.max_pixels`` (checked from the header, before any
    pixel is decoded), or a truncated/corrupt file. UploadTooLargeError (413) for too many bytes.
    """
    name = repr(filename or "upload")
    if len(data) > limits.max_bytes:
        raise UploadTooLargeError(
            f"upload {name} is {len(data)} bytes; the limit is {limits.max_bytes} bytes"
        )
    if not data:
        raise UploadRejectedError(f"upload {name} is empty; send a PNG, JPEG or WebP image")
    try:
        # Lazy: reads the header only. Pillow itself refuses > 2 * MAX_IMAGE_PIXELS here; our
        # own, lower pixel limit is checked below before a single pixel is decoded.
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise UploadRejectedError(
            f"upload {name} is not an image Pillow can decode; send a PNG, JPEG or WebP image"
        ) from None
    except Image.DecompressionBombError:
        raise UploadRejectedError(
            f"upload {name} declares too many pixels (a decompression bomb?); the limit is "
            f"{limits.max_pixels} pixels"
        ) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise UploadRejectedError(
            f"upload {name} has a corrupt image header ({exc}); export it again and re-upload"
        ) from None
    with image:
        return _normalize_open_image(image, data, limits, name)


def _normalize_open_image(
    image: Image.Image, data: bytes, limits: UploadLimits, name: str
) -> NormalizedImage:
    source_format = image.format or "unknown"
    if source_format not in ALLOWED_FORMATS:
        raise UploadRejectedError(
            f"upload {name} is a {source_format} image; only PNG, JPEG and WebP are accepted "
            "(the format is read from the file's bytes, not its name)"
        )
    width, height = image.size
    if width <= 0 or height <= 0 or width * height > limits.max_pixels:
        raise UploadRejectedError(
            f"upload {name} is {width}x{height} = {width * height} pixels; the limit is "
            f"{limits.max_pixels} pixels — resize it and upload again"
        )
    if getattr(image, "n_frames", 1) > 1:
        raise UploadRejectedError(
            f"upload {name} is an animated {source_format}; upload a still image"
        )
    try:
        image.load()
        upright = ImageOps.exif_transpose(image)
        upright = to_8bit(upright)
        mode = "RGBA" if ("A" in upright.getbands() or "transparency" in upright.info) else "RGB"
        converted = upright.convert(mode)
        buffer = io.BytesIO()
        converted.save(buffer, format="PNG")
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise UploadRejectedError(
            f"upload {name} could not be decoded as {source_format} ({exc}); the file is "
            "truncated or corrupt — export it again and re-upload"
        ) from None
    return NormalizedImage(
        png=buffer.getvalue(),
        width=converted.width,
        height=converted.height,
        source_format=source_format,
        source_bytes=len(data),
    )
