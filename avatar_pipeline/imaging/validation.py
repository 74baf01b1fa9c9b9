"""Checks every request before any provider is called; each failure names the bad input.

Accepted ranges (what both the offline renderer and the Replicate models can honour):

- prompt: not empty, at most ``MAX_PROMPT_CHARS`` characters, no NUL; same for the negative prompt;
- width, height: ``MIN_SIDE``..``MAX_SIDE`` pixels and multiples of ``SIDE_MULTIPLE`` (16);
- num_images: 1..``MAX_NUM_IMAGES``;
- edit_strength: 0.0..1.0;
- seed: None, or an integer in 0..2**32-1;
- reference_images: 1..``MAX_REFERENCES`` images, each at most ``MAX_REFERENCE_BYTES``, decoding
  as PNG, JPEG or WebP, and no larger than Pillow's decompression-bomb limit
  (``PIL.Image.MAX_IMAGE_PIXELS``).
"""

from __future__ import annotations

import io
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from avatar_pipeline.domain.prompts import MAX_PROMPT_CHARS
from avatar_pipeline.imaging.types import (
    EditRequest,
    GenerateRequest,
    InvalidImageRequestError,
    sha256_hex,
)

MIN_SIDE = 256
MAX_SIDE = 2048
SIDE_MULTIPLE = 16
MAX_NUM_IMAGES = 4
MAX_REFERENCES = 8
MAX_REFERENCE_BYTES = 20 * 1024 * 1024
MAX_SEED = 2**32 - 1
ACCEPTED_FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
_FALLBACK_MAX_PIXELS = 89_478_485  # Pillow's default, used if someone set the limit to None


@dataclass(frozen=True)
class ReferenceInfo:
    """What validation learned about one reference image."""

    format: str
    mime_type: str
    width: int
    height: int
    sha256: str


def max_image_pixels() -> int:
    return int(Image.MAX_IMAGE_PIXELS or _FALLBACK_MAX_PIXELS)


def _check_text(name: str, value: str | None, *, required: bool) -> None:
    if value is None:
        if required:
            raise InvalidImageRequestError(f"{name} is required")
        return
    if not isinstance(value, str):
        raise InvalidImageRequestError(f"{name} must be a string, got {type(value).__name__}")
    if required and not value.strip():
        raise InvalidImageRequestError(f"{name} is empty; describe the image you want")
    if len(value) > MAX_PROMPT_CHARS:
        raise InvalidImageRequestError(
            f"{name} is {len(value)} characters; the limit is {MAX_PROMPT_CHARS}: shorten it"
        )
    if "\x00" in value:
        raise InvalidImageRequestError(f"{name} contains a NUL character; remove it")


def _check_side(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidImageRequestError(f"{name} must be an integer, got {value!r}")
    if not MIN_SIDE <= value <= MAX_SIDE or value % SIDE_MULTIPLE:
        raise InvalidImageRequestError(
            f"{name}={value} is not allowed: use a multiple of {SIDE_MULTIPLE} "
            f"between {MIN_SIDE} and {MAX_SIDE} (e.g. 1024)"
        )


def _check_seed(seed: int | None) -> None:
    if seed is None:
        return
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise InvalidImageRequestError(
            f"seed={seed!r} is not allowed: use None or an integer in 0..{MAX_SEED}"
        )


def validate_generate(request: GenerateRequest) -> None:
    _check_text("prompt", request.prompt, required=True)
    _check_text("negative_prompt", request.negative_prompt, required=False)
    _check_side("width", request.width)
    _check_side("height", request.height)
    n = request.num_images
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_NUM_IMAGES:
        raise InvalidImageRequestError(
            f"num_images={n!r} is not allowed: ask for 1 to {MAX_NUM_IMAGES} images"
        )
    _check_seed(request.seed)


def validate_edit(request: EditRequest) -> tuple[ReferenceInfo, ...]:
    """Validate an edit; decodes every reference (CPU work: call it off the event loop)."""
    _check_text("prompt", request.prompt, required=True)
    _check_text("negative_prompt", request.negative_prompt, required=False)
    _check_side("width", request.width)
    _check_side("height", request.height)
    strength = request.edit_strength
    if (
        isinstance(strength, bool)
        or not isinstance(strength, int | float)
        or not math.isfinite(strength)
        or not 0.0 <= strength <= 1.0
    ):
        raise InvalidImageRequestError(
            f"edit_strength={strength!r} is not allowed: use a number from 0.0 (keep the "
            "reference) to 1.0 (ignore it)"
        )
    _check_seed(request.seed)
    refs = request.reference_images
    if not refs:
        raise InvalidImageRequestError(
            "reference_images is empty: edit() needs at least one reference image "
            "(use generate() for text-to-image)"
        )
    if len(refs) > MAX_REFERENCES:
        raise InvalidImageRequestError(
            f"reference_images has {len(refs)} images; at most {MAX_REFERENCES} are allowed"
        )
    return tuple(inspect_reference(i, data) for i, data in enumerate(refs))


# A kit's edits reuse the same anchor many times: remember references that passed (by hash,
# which is far cheaper than decoding) so each is decoded once per process.
_validated: OrderedDict[str, ReferenceInfo] = OrderedDict()
_validated_lock = threading.Lock()
_VALIDATED_MAX = 256


def inspect_reference(index: int, data: bytes) -> ReferenceInfo:
    """Decode one reference fully (verify + load) under the decompression-bomb guard."""
    name = f"reference_images[{index}]"
    if not isinstance(data, bytes | bytearray | memoryview):
        raise InvalidImageRequestError(f"{name} must be bytes, got {type(data).__name__}")
    data = bytes(data)
    digest = sha256_hex(data)
    with _validated_lock:
        known = _validated.get(digest)
        if known is not None:
            _validated.move_to_end(digest)
            return known
    info = _decode_reference(name, data, digest)
    with _validated_lock:
        _validated[digest] = info
        while len(_validated) > _VALIDATED_MAX:
            _validated.popitem(last=False)
    return info


def _decode_reference(name: str, data: bytes, digest: str) -> ReferenceInfo:
    size = len(data)
    if size == 0:
        raise InvalidImageRequestError(f"{name} is empty (0 bytes)")
    if size > MAX_REFERENCE_BYTES:
        raise InvalidImageRequestError(
            f"{name} is {size / 2**20:.1f} MiB; the limit is "
            f"{MAX_REFERENCE_BYTES / 2**20:.0f} MiB: downscale it or re-encode it as PNG/JPEG"
        )
    limit = max_image_pixels()
    try:
        with Image.open(io.BytesIO(data)) as probe:
            fmt = probe.format or ""
            width, height = probe.size
            if width * height > limit:
                raise _bomb(name, width, height, limit)
            probe.verify()
        with Image.open(io.BytesIO(data)) as image:
            image.load()
    except InvalidImageRequestError:
        raise
    except Image.DecompressionBombError as exc:
        raise InvalidImageRequestError(
            f"{name} declares more pixels than the decompression-bomb limit of "
            f"{limit / 1e6:.0f} MP (PIL.Image.MAX_IMAGE_PIXELS): send a normal-size image"
        ) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InvalidImageRequestError(
            f"{name} ({size} bytes) does not decode as an image ({exc.__class__.__name__}); "
            "send PNG, JPEG or WebP bytes"
        ) from exc
    if fmt not in ACCEPTED_FORMATS:
        raise InvalidImageRequestError(
            f"{name} is {fmt or 'an unknown format'}; send PNG, JPEG or WebP"
        )
    return ReferenceInfo(fmt, ACCEPTED_FORMATS[fmt], width, height, digest)


def _bomb(name: str, width: int, height: int, limit: int) -> InvalidImageRequestError:
    return InvalidImageRequestError(
        f"{name} declares {width}x{height} pixels ({width * height / 1e6:.0f} MP), more than "
        f"the decompression-bomb limit of {limit / 1e6:.0f} MP (PIL.Image.MAX_IMAGE_PIXELS): "
        "send a normal-size image"
    )
