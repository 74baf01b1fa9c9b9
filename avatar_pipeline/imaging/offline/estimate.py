"""Estimate a character identity from pixels alone (uploads and imports carry no identity).

How, on a copy downscaled to 160 px wide:

1. Background: flood fills from points all around the border (each tolerating a colour
   difference of 60 (sum over R, G, B), which follows gradients and soft patterns but stops at outlines); the
   figure is everything the fills cannot reach, so white hair on a pale background counts.
2. Framing: a figure that runs into the bottom edge is a portrait (shoulders up); otherwise a
   full-body image. That gives the pixels-per-unit of the offline camera.
3. Head top: the first row where most of a narrow window around the figure's centre is
   foreground (so a cowlick, a thought bubble or sparkles do not count as the head).
4. Colours are the dominant (most frequent after quantisation) foreground colour in regions at
   fixed offsets below the head top: the crown (hair), between the eyes (skin), the eyes'
   irises (eye colour: neither skin, hair, white nor ink), the upper chest beside the centre
   line (outfit), and the border strips (background).
5. Hair length: how far down hair-coloured pixels reach beside the face and neck.

Everything else (face shape, eye shape, bangs, accessory, proportions, ...) cannot be read
reliably from pixels; it is drawn from a seed derived from the image bytes, so edits of the same
upload agree with each other. Works best on the offline renderer's own images; on arbitrary art
it recovers the broad palette (hair, skin, outfit) at best.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from avatar_pipeline.imaging.offline.character import (
    RGB,
    CharacterIdentity,
    RenderState,
    identity_from_prompt,
    nearest_colour_name,
)
from avatar_pipeline.imaging.offline.prompt_parser import PromptTraits
from avatar_pipeline.imaging.offline.renderer import VIEWS

WORK_WIDTH = 160
FLOOD_THRESHOLD = 60  # summed |dR|+|dG|+|dB| a background flood fill may cross
SENTINEL: RGB = (255, 0, 254)


def _dominant(pixels: np.ndarray) -> RGB | None:
    if len(pixels) == 0:
        return None
    q = pixels.astype(np.int32) // 12
    keys = q[:, 0] * 10000 + q[:, 1] * 100 + q[:, 2]
    values, counts = np.unique(keys, return_counts=True)
    members = pixels[keys == values[counts.argmax()]]
    r, g, b = (int(v) for v in members.mean(axis=0).round())
    return (r, g, b)


def _dist(pixels: np.ndarray, colour: RGB) -> np.ndarray:
    return np.sqrt(((pixels.astype(np.float32) - np.array(colour, np.float32)) ** 2).sum(axis=-1))


def seed_from_bytes(data: bytes) -> int:
    return int(hashlib.sha256(data).hexdigest()[:8], 16) & 0x7FFFFFFF


def _background_mask(rgb: Image.Image) -> np.ndarray:
    """True where a pixel is background: flood-filled from points all around the border."""
    work = rgb.copy()
    w, h = work.size
    seeds = [(x, y) for x in range(0, w, 8) for y in (0, h - 1)]
    seeds += [(x, y) for y in range(0, h, 6) for x in (0, w - 1)]
    for xy in seeds:
        if work.getpixel(xy) != SENTINEL:
            ImageDraw.floodfill(work, xy, SENTINEL, thresh=FLOOD_THRESHOLD)
    arr = np.asarray(work, dtype=np.int16)
    return (arr == np.array(SENTINEL, np.int16)).all(axis=-1)


def estimate_identity(
    img: Image.Image, seed: int
) -> tuple[CharacterIdentity, RenderState, dict[str, Any]]:
    """(identity, render state, notes on what was measured) for an image without a chunk."""
    rgb = img.convert("RGB")
    w = WORK_WIDTH
    h = max(8, round(rgb.height * w / rgb.width))
    small = rgb.resize((w, h), Image.Resampling.BOX)
    arr = np.asarray(small, dtype=np.int16)
    bg_mask = _background_mask(small)
    fg = ~bg_mask
    notes: dict[str, Any] = {"method": "estimated from pixels"}
    base = identity_from_prompt(PromptTraits(), seed)
    background = _dominant(arr[bg_mask]) or base.background_rgb
    rows = np.flatnonzero(fg.sum(axis=1) >= 2)
    if len(rows) == 0:
        notes["figure"] = "none found; identity drawn from the seed"
        return replace(base, background_rgb=background), RenderState(), notes
    framing = "portrait" if rows[-1] >= h - 2 else "fullbody"
    top_u, bottom_u, span = VIEWS[framing]
    u = min(h / (bottom_u - top_u), w / span)  # pixels per unit at the working size
    ys, xs = np.nonzero(fg[: rows[0] + int(3 * u)])
    cx = int(np.median(xs)) if len(xs) else w // 2
    half = max(1, int(0.3 * u))
    solid = np.flatnonzero(fg[:, max(0, cx - half) : cx + half + 1].mean(axis=1) >= 0.5)
    top = int(solid[0]) if len(solid) else int(rows[0])

    def region(y0: float, y1: float, x0: float, x1: float, mirror: bool = False) -> np.ndarray:
        r0, r1 = max(0, int(top + y0 * u)), min(h, int(top + y1 * u) + 1)
        spans = [(x0, x1), (-x1, -x0)] if mirror else [(x0, x1)]
        parts = []
        for a, b in spans:
            c0, c1 = max(0, int(cx + a * u)), min(w, int(cx + b * u) + 1)
            parts.append(arr[r0:r1, c0:c1][fg[r0:r1, c0:c1]].reshape(-1, 3))
        return np.concatenate(parts)

    def plain(px: np.ndarray, *avoid: RGB) -> np.ndarray:
        """Drop near-white, ink-dark and ``avoid``-coloured pixels."""
        keep = (px.min(axis=1) < 240) & (px.sum(axis=1) > 170)
        for colour in avoid:
            keep &= _dist(px, colour) > 45
        return px[keep]

    hair = _dominant(region(0.1, 0.6, -0.45, 0.45)) or base.hair_rgb
    skin = _dominant(plain(region(1.2, 2.1, -0.4, 0.4), hair)) or base.skin_rgb
    outfit = _dominant(plain(region(3.3, 4.0, 0.3, 0.7, mirror=True), hair, skin))
    outfit = outfit or base.outfit_rgb
    eye_px = plain(region(1.3, 2.0, 0.15, 0.65, mirror=True), hair, skin)
    eyes = _dominant(eye_px) if len(eye_px) >= 3 else None
    hair_length = _hair_length(arr, fg, hair, top, cx, u)
    notes.update(framing=framing, hair_length=hair_length, eyes_found=eyes is not None)
    identity = replace(
        base,
        hair_colour=nearest_colour_name(hair),
        hair_rgb=hair,
        hair_length=hair_length,
        skin_rgb=skin,
        eye_colour=nearest_colour_name(eyes) if eyes else base.eye_colour,
        eye_rgb=eyes or base.eye_rgb,
        outfit_colour=nearest_colour_name(outfit),
        outfit_rgb=outfit,
        background_rgb=background,
    )
    return identity, RenderState(framing=framing), notes


def _hair_length(arr: np.ndarray, fg: np.ndarray, hair: RGB, top: int, cx: int, u: float) -> str:
    """short / shoulder / long from how low hair-coloured pixels reach beside the torso."""
    h, w = fg.shape
    lo, hi = int(0.75 * u), int(1.25 * u)
    side = np.zeros_like(fg)
    side[:, max(0, cx - hi) : max(0, cx - lo)] = True
    side[:, min(w, cx + lo) : min(w, cx + hi)] = True
    hairy = fg & side & (_dist(arr, hair) < 34)
    rows = np.flatnonzero(hairy.sum(axis=1) >= 2)
    if len(rows) == 0:
        return "short"
    reach = (rows[-1] - top) / u - 1.26  # in head units below the head centre
    if reach < 1.6:
        return "short"
    return "shoulder" if reach < 2.6 else "long"
