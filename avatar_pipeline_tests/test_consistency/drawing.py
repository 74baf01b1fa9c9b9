"""Pillow-drawn stand-ins for character images (a face, hair, eyes, mouth, outfit)."""

from __future__ import annotations

import io
import random

from PIL import Image, ImageDraw

MOUTHS = ("neutral", "happy", "sad")


def character_png(seed: int, expression: str = "neutral", size: int = 256) -> bytes:
    """A simple character whose colours come from ``seed`` and whose mouth shows ``expression``."""
    rng = random.Random(seed)
    background = tuple(rng.randint(200, 255) for _ in range(3))
    hair = tuple(rng.randint(0, 255) for _ in range(3))
    skin = (rng.randint(200, 255), rng.randint(160, 210), rng.randint(130, 180))
    outfit = tuple(rng.randint(0, 255) for _ in range(3))
    eyes = tuple(rng.randint(0, 200) for _ in range(3))
    image = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(image)

    def box(x0: float, y0: float, x1: float, y1: float) -> tuple[float, float, float, float]:
        k = size / 512
        return (x0 * k, y0 * k, x1 * k, y1 * k)

    draw.rectangle(box(130, 360, 382, 512), fill=outfit)
    draw.ellipse(box(150, 80, 362, 330), fill=hair)
    draw.ellipse(box(170, 120, 342, 340), fill=skin)
    for x in (215, 285):
        draw.ellipse(box(x - 12, 200, x + 12, 224), fill=eyes)
    width = max(2, size // 80)
    if expression == "happy":
        draw.arc(box(216, 250, 296, 300), 0, 180, fill=(120, 0, 0), width=width)
    elif expression == "sad":
        draw.arc(box(216, 275, 296, 320), 180, 360, fill=(120, 0, 0), width=width)
    else:
        draw.line(box(226, 285, 286, 285), fill=(120, 0, 0), width=width)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def reencoded(data: bytes, *, quality: int = 85, scale: float = 1.0) -> bytes:
    """The same picture as JPEG, optionally resized (what a lazy "edit" might hand back)."""
    image = Image.open(io.BytesIO(data)).convert("RGB")
    if scale != 1.0:
        image = image.resize((int(image.width * scale), int(image.height * scale)))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality)
    return out.getvalue()
