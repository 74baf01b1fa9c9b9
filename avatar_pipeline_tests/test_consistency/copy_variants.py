"""Inputs for the not-a-copy sweep: offline-renderer anchors, their copies, and honest edits.

The copies are made here with Pillow (brightness, shift, crop, blur, JPEG), never by the code
under test; the honest edits come from the offline provider's own edit routine, exactly as a
kit run asks for them (expression edits of the portrait at strength 0.5, poses at 0.7).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

from avatar_pipeline.domain.prompts import (
    KitPrompts,
    expression_prompt,
    fullbody_prompt,
    pose_prompt,
    portrait_prompt,
)
from avatar_pipeline.domain.vocab import DEFAULT_EXPRESSIONS, DEFAULT_POSES
from avatar_pipeline.imaging.offline.engine import edit_png, generate_png

HAIR = ("black", "blonde", "red", "silver", "blue", "brown", "pink", "green")
EYES = ("green", "brown", "blue", "violet", "amber")
OUTFITS = (
    "white shirt",
    "red hoodie",
    "navy school uniform",
    "green jacket",
    "black dress",
    "yellow raincoat",
)
STYLES = ("anime style, clean lineart", "watercolour illustration", "flat vector art")
RENDERER = "offline-sweep"


def kit_prompts(i: int) -> KitPrompts:
    return KitPrompts(
        appearance_prompt=(
            f"{HAIR[i % len(HAIR)]} hair, {EYES[(i // 2) % len(EYES)]} eyes, "
            f"{OUTFITS[(i // 3) % len(OUTFITS)]}"
        ),
        style_prompt=STYLES[i % len(STYLES)],
    )


def anchor(i: int, size: int) -> bytes:
    png, _ = generate_png(portrait_prompt(kit_prompts(i)), None, 1000 + i, size, size, RENDERER)
    return png


def _png(img: Image.Image) -> bytes:
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def _open(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as img:
        return img.convert("RGB")


def _shift(img: Image.Image, fx: float, fy: float) -> Image.Image:
    a = np.asarray(img)
    h, w, _ = a.shape
    dx, dy = round(fx * w), round(fy * h)
    padded = np.pad(a, ((abs(dy), abs(dy)), (abs(dx), abs(dx)), (0, 0)), mode="edge")
    y0, x0 = abs(dy) - dy, abs(dx) - dx
    return Image.fromarray(padded[y0 : y0 + h, x0 : x0 + w])


def _crop(img: Image.Image, f: float, resize_back: bool) -> Image.Image:
    w, h = img.size
    box = (round(f * w), round(f * h), w - round(f * w), h - round(f * h))
    out = img.crop(box)
    return out.resize((w, h), Image.Resampling.LANCZOS) if resize_back else out


def _jpeg(img: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=quality)
    return out.getvalue()


COPY_VARIANTS: dict[str, Callable[[Image.Image], bytes]] = {
    "exact": _png,
    "brightness +5%": lambda im: _png(ImageEnhance.Brightness(im).enhance(1.05)),
    "brightness -5%": lambda im: _png(ImageEnhance.Brightness(im).enhance(0.95)),
    "contrast +5%": lambda im: _png(ImageEnhance.Contrast(im).enhance(1.05)),
    "shift 2%": lambda im: _png(_shift(im, 0.02, 0.02)),
    "shift -2% x": lambda im: _png(_shift(im, -0.02, 0.0)),
    "crop 2%": lambda im: _png(_crop(im, 0.02, resize_back=False)),
    "crop 2% + rescale": lambda im: _png(_crop(im, 0.02, resize_back=True)),
    "rescale 50%": lambda im: _png(im.resize((im.width // 2, im.height // 2))),
    "blur r2": lambda im: _png(im.filter(ImageFilter.GaussianBlur(2))),
    "blur r1": lambda im: _png(im.filter(ImageFilter.GaussianBlur(1))),
    "jpeg q80": lambda im: _jpeg(im, 80),
    "jpeg q80 + brightness +5%": lambda im: _jpeg(ImageEnhance.Brightness(im).enhance(1.05), 80),
}


def copies_of(image: bytes) -> Iterator[tuple[str, bytes]]:
    img = _open(image)
    for name, make in COPY_VARIANTS.items():
        yield name, make(img)


@dataclass(frozen=True)
class HonestEdit:
    kind: str  # "expression:happy", "pose:waving", "fullbody"
    image: bytes
    references: tuple[bytes, ...]


def honest_edits(i: int, size: int, portrait: bytes) -> list[HonestEdit]:
    """The offline provider's real edits of anchor ``i``, as a kit run requests them."""
    prompts = kit_prompts(i)
    seed = 5000 + i
    full, _ = edit_png(fullbody_prompt(prompts), (portrait,), None, 0.6, seed, size, size, RENDERER)
    edits = [HonestEdit("fullbody", full, (portrait,))]
    for n, expr in enumerate(DEFAULT_EXPRESSIONS):
        png, _ = edit_png(
            expression_prompt(prompts, expr), (portrait,), None, 0.5, seed + n, size, size, RENDERER
        )
        edits.append(HonestEdit(f"expression:{expr.name}", png, (portrait,)))
    for n, pose in enumerate(DEFAULT_POSES):
        png, _ = edit_png(
            pose_prompt(prompts, pose), (portrait, full), None, 0.7, seed + 50 + n, size, size,
            RENDERER,
        )
        edits.append(HonestEdit(f"pose:{pose.name}", png, (portrait, full)))
    return edits
