"""Backgrounds a character can be placed on: flat, gradient, patterns and simple scenery."""

from __future__ import annotations

import colorsys
import random

import numpy as np
from PIL import Image, ImageDraw

RGB = tuple[int, int, int]
KINDS = ("flat", "gradient", "stripes", "checks", "dots", "sky_ground", "room")


def _colour(rng: random.Random, light: tuple[float, float] = (0.55, 0.92)) -> RGB:
    h = rng.random()
    l_ = rng.uniform(*light)
    s = rng.uniform(0.15, 0.75)
    r, g, b = colorsys.hls_to_rgb(h, l_, s)
    return (round(r * 255), round(g * 255), round(b * 255))


def background(kind: str, seed: int, size: int) -> Image.Image:
    """A ``size`` x ``size`` RGB background of ``kind`` (deterministic for ``seed``)."""
    rng = random.Random(f"bg:{kind}:{seed}")
    a, b = _colour(rng), _colour(rng)
    if kind == "flat":
        return Image.new("RGB", (size, size), a)
    if kind == "gradient":
        angle = rng.uniform(0, np.pi)
        yy, xx = np.mgrid[0:size, 0:size] / size - 0.5
        t = (np.cos(angle) * xx + np.sin(angle) * yy) + 0.5
        t = np.clip(t, 0, 1)[..., None]
        arr = np.asarray(a, float) * (1 - t) + np.asarray(b, float) * t
        return Image.fromarray(arr.round().astype(np.uint8), "RGB")
    img = Image.new("RGB", (size, size), a)
    draw = ImageDraw.Draw(img)
    if kind == "stripes":
        step = size / rng.uniform(5, 10)
        slant = rng.choice([0.0, 1.0, -1.0])
        for i in range(-12, 24):
            x = i * step
            draw.polygon(
                [
                    (x, 0),
                    (x + step / 2, 0),
                    (x + step / 2 + slant * size, size),
                    (x + slant * size, size),
                ],
                fill=b,
            )
    elif kind == "checks":
        step = size / rng.choice([4, 6, 8])
        n = int(size / step) + 1
        for j in range(n):
            for i in range(n):
                if (i + j) % 2:
                    draw.rectangle((i * step, j * step, (i + 1) * step, (j + 1) * step), fill=b)
    elif kind == "dots":
        step = size / rng.uniform(5, 9)
        r = step * rng.uniform(0.12, 0.25)
        for j in range(-1, 12):
            for i in range(-1, 12):
                x, y = (i + 0.5 * (j % 2)) * step, j * step
                draw.ellipse((x - r, y - r, x + r, y + r), fill=b)
    elif kind == "sky_ground":
        sky_top = _colour(rng, (0.6, 0.8))
        sky_bottom = tuple(min(255, c + 40) for c in sky_top)
        yy = np.linspace(0, 1, size)[:, None, None]
        arr = np.asarray(sky_top, float) * (1 - yy) + np.asarray(sky_bottom, float) * yy
        img = Image.fromarray(np.repeat(arr, size, axis=1).round().astype(np.uint8), "RGB")
        draw = ImageDraw.Draw(img)
        horizon = size * rng.uniform(0.6, 0.78)
        ground = _colour(rng, (0.35, 0.6))
        hill = tuple(max(0, c - 25) for c in ground)
        hx = rng.uniform(-0.2, 0.4) * size
        draw.ellipse((hx, horizon - size * 0.12, hx + size * 0.9, horizon + size * 0.2), fill=hill)
        draw.rectangle((0, horizon, size, size), fill=ground)
        sx, sy = rng.uniform(0.05, 0.25) * size, rng.uniform(0.05, 0.2) * size
        if rng.random() < 0.5:
            sx = size - sx
        r = size * 0.06
        draw.ellipse((sx - r, sy - r, sx + r, sy + r), fill=(250, 236, 150))
    elif kind == "room":
        floor_y = size * rng.uniform(0.65, 0.8)
        draw.rectangle((0, floor_y, size, size), fill=b)
        wx = rng.uniform(0.05, 0.6) * size
        draw.rectangle(
            (wx, size * 0.12, wx + size * 0.3, size * 0.42),
            fill=(200, 226, 245),
            outline=(110, 90, 70),
            width=max(2, size // 80),
        )
    else:
        raise ValueError(f"unknown background kind {kind!r}; expected one of {KINDS}")
    return img
