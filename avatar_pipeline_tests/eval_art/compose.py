"""Place an RGBA character on a background with a framing, then light the whole picture."""

from __future__ import annotations

import numpy as np
from PIL import Image


def place(
    figure: Image.Image,
    back: Image.Image,
    *,
    zoom: float = 1.0,
    dx: float = 0.0,
    dy: float = 0.0,
) -> Image.Image:
    """``figure`` (RGBA, same size as ``back``) scaled by ``zoom`` about the centre and moved by
    (dx, dy) fractions of the size; parts pushed off the frame are cropped."""
    size = back.size
    w, h = figure.size
    if zoom != 1.0:
        figure = figure.resize((round(w * zoom), round(h * zoom)), Image.Resampling.LANCZOS)
    ox = round((size[0] - figure.width) / 2 + dx * size[0])
    oy = round((size[1] - figure.height) / 2 + dy * size[1])
    out = back.convert("RGB").copy()
    out.paste(figure, (ox, oy), figure)
    return out


def light(
    image: Image.Image, brightness: float = 1.0, tint: tuple[float, float, float] = (1, 1, 1)
) -> Image.Image:
    """Global lighting: every channel multiplied (brightness x tint), clipped."""
    arr = np.asarray(image.convert("RGB"), float) * brightness * np.asarray(tint)
    return Image.fromarray(np.clip(arr, 0, 255).round().astype(np.uint8), "RGB")
