"""Estimate a character identity from pixels alone (uploads and imports carry no identity).

How, on a copy downscaled to 160 px wide:

1. Background: flood fills from background points on the border (each tolerating a colour
   difference of 60, summed over R, G, B: enough for gradients and soft patterns, not for
   outlines); the figure is everything the fills cannot reach, so white hair on a pale
   background still counts as figure.
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
from dataclasses import dataclass, replace
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


def _border_seeds(arr: np.ndarray) -> list[tuple[int, int]]:
    """Border points that are background: the top row, then down each side for as long as the
    colour changes smoothly (a figure cut by the frame, e.g. shoulders, breaks the chain)."""
    h, w, _ = arr.shape
    seeds = [(x, 0) for x in range(0, w, 8)]
    for x in (0, w - 1):
        last = arr[0, x]
        for y in range(0, h, 4):
            if np.abs(arr[y, x] - last).sum() <= FLOOD_THRESHOLD:
                seeds.append((x, y))
                last = arr[y, x]
    return seeds


def _background_mask(rgb: Image.Image) -> np.ndarray:
    """True where a pixel is background: flood-filled from background points on the border."""
    work = rgb.copy()
    for xy in _border_seeds(np.asarray(rgb, dtype=np.int16)):
        if work.getpixel(xy) != SENTINEL:
            ImageDraw.floodfill(work, xy, SENTINEL, thresh=FLOOD_THRESHOLD)
    arr = np.asarray(work, dtype=np.int16)
    return (arr == np.array(SENTINEL, np.int16)).all(axis=-1)


@dataclass(frozen=True)
class _Frame:
    """Where the figure sits in the working image: head top row, centre column, scales."""

    top: int
    cx: int
    u: float  # pixels per unit
    hs: float  # head scale

    def head_px(self, x: float, y: float) -> tuple[float, float]:
        """Pixel of a head-unit point (the head centre lies 1.364 head units below its top)."""
        return (self.cx + x * self.hs * self.u, self.top + (y + HEAD_TOP) * self.hs * self.u)

    def body_px(self, x: float, y: float) -> tuple[float, float]:
        """Pixel of a body-unit point (the head scales about the neck at body y = 1)."""
        top_body = 1.0 - (1.0 + HEAD_TOP) * self.hs
        return (self.cx + x * self.u, self.top + (y - top_body) * self.u)


HEAD_TOP = 1.364  # the crown of the hair above the head centre, in head units
HEAD_HALF_WIDTH = 1.25  # the hair's half-width at the head centre, in head units


def _run_width(row: np.ndarray, cx: int) -> tuple[int, int]:
    """The contiguous foreground run of ``row`` containing column ``cx`` (start, end)."""
    if not row[cx]:
        return cx, cx
    left = cx
    while left > 0 and row[left - 1]:
        left -= 1
    right = cx
    while right < len(row) - 1 and row[right + 1]:
        right += 1
    return left, right


def _locate(fg: np.ndarray, u: float) -> _Frame:
    h = fg.shape[0]
    ys, xs = np.nonzero(fg)
    cx = int(np.median(xs[ys < ys.min() + 3 * u]))

    def first_solid(cx: int) -> int:
        half = max(1, int(0.5 * u))
        solid = np.flatnonzero(fg[:, max(0, cx - half) : cx + half + 1].mean(axis=1) >= 0.6)
        return int(solid[0]) if len(solid) else int(ys.min())

    top = first_solid(cx)
    left, right = _run_width(fg[min(h - 1, top + int(0.5 * u))], cx)
    cx = (left + right) // 2  # re-centre on the crown (a raised arm pulls the median aside)
    top = first_solid(cx)
    best, best_err = 1.0, float("inf")
    for hs in np.linspace(0.7, 1.2, 26):
        row = min(h - 1, int(top + HEAD_TOP * hs * u))
        left, right = _run_width(fg[row], cx)
        err = abs((right - left + 1) - 2 * HEAD_HALF_WIDTH * hs * u)
        if err < best_err:
            best, best_err = float(hs), err
    return _Frame(top=top, cx=cx, u=u, hs=best)


def estimate_identity(
    img: Image.Image, seed: int
) -> tuple[CharacterIdentity, RenderState, dict[str, Any]]:
    """(identity, render state, notes on what was measured) for an image without a chunk."""
    rgb = img.convert("RGB")
    notes: dict[str, Any] = {"method": "estimated from pixels"}
    base = identity_from_prompt(PromptTraits(), seed)
    framing = None
    for width in (WORK_WIDTH, 2 * WORK_WIDTH):  # a full-body figure is small: look again larger
        w, h = width, max(8, round(rgb.height * width / rgb.width))
        small = rgb.resize((w, h), Image.Resampling.BOX)
        arr = np.asarray(small, dtype=np.int16)
        bg_mask = _background_mask(small)
        fg = ~bg_mask
        rows = np.flatnonzero(fg.sum(axis=1) >= 2)
        if len(rows) == 0:
            notes["figure"] = "none found; identity drawn from the seed"
            background = _dominant(arr.reshape(-1, 3)) or base.background_rgb
            return replace(base, background_rgb=background), RenderState(), notes
        framing = framing or ("portrait" if rows[-1] >= h - 2 else "fullbody")
        if framing == "portrait":
            break
    background = _dominant(arr[bg_mask]) or base.background_rgb
    top_u, bottom_u, span = VIEWS[framing]
    frame = _locate(fg, min(h / (bottom_u - top_u), w / span))

    def pixels(
        corners: tuple[tuple[float, float], tuple[float, float]], mirror: bool
    ) -> np.ndarray:
        (x0, y0), (x1, y1) = corners
        r0, r1 = max(0, int(y0)), min(h, int(y1) + 1)
        parts = []
        for a, b in ((x0, x1), (2 * frame.cx - x1, 2 * frame.cx - x0)) if mirror else ((x0, x1),):
            c0, c1 = max(0, int(a)), min(w, int(b) + 1)
            parts.append(arr[r0:r1, c0:c1][fg[r0:r1, c0:c1]].reshape(-1, 3))
        return np.concatenate(parts)

    def head(x0: float, y0: float, x1: float, y1: float, mirror: bool = False) -> np.ndarray:
        return pixels((frame.head_px(x0, y0), frame.head_px(x1, y1)), mirror)

    def body(x0: float, y0: float, x1: float, y1: float, mirror: bool = False) -> np.ndarray:
        return pixels((frame.body_px(x0, y0), frame.body_px(x1, y1)), mirror)

    def plain(px: np.ndarray, *avoid: RGB, within: float = 45) -> np.ndarray:
        """Drop near-white, ink-dark and ``avoid``-coloured pixels."""
        keep = (px.min(axis=1) < 240) & (px.sum(axis=1) > 170)
        for colour in avoid:
            keep &= _dist(px, colour) > within
        return px[keep]

    hair = _dominant(head(-0.45, -0.9, 0.45, -0.5)) or base.hair_rgb
    skin = _dominant(plain(head(-0.4, 0.0, 0.4, 0.95), hair, within=28)) or base.skin_rgb
    outfit = _dominant(plain(body(0.3, 2.3, 0.7, 2.7, mirror=True), hair, skin))
    outfit = outfit or base.outfit_rgb
    eye_px = plain(head(0.15, 0.05, 0.65, 0.6, mirror=True), hair, skin)
    eyes = _dominant(eye_px) if len(eye_px) >= 3 else None
    hair_length = _hair_length(arr, fg, hair, frame)
    notes.update(
        framing=framing,
        head_scale=round(frame.hs, 2),
        hair_length=hair_length,
        eyes_found=eyes is not None,
    )
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


def _hair_length(arr: np.ndarray, fg: np.ndarray, hair: RGB, frame: _Frame) -> str:
    """short / shoulder / long from how far hair runs down beside the face without a break.

    Walks down from below the eyes while either side window (0.7..1.3 head units out) holds
    about a strand's width of hair-coloured pixels; thin outlines and same-coloured clothes
    further down (after a gap) do not count.
    """
    h, w = fg.shape
    hairy = fg & (_dist(arr, hair) < 34)
    windows = []
    for a, b in ((-1.3, -0.7), (0.7, 1.3)):
        (c0, _), (c1, _) = frame.head_px(a, 0), frame.head_px(b, 0)
        windows.append((max(0, int(c0)), min(w, int(c1) + 1)))
    min_count = max(3, int(0.15 * frame.hs * frame.u))
    max_gap = max(1, int(0.12 * frame.hs * frame.u))
    start = int(frame.head_px(0, 0.6)[1])
    last, gap = start, 0
    for y in range(max(0, start), h):
        if any(hairy[y, c0:c1].sum() >= min_count for c0, c1 in windows if c1 > c0):
            last, gap = y, 0
        else:
            gap += 1
            if gap > max_gap:
                break
    reach = (last - frame.top) / (frame.hs * frame.u) - HEAD_TOP  # head units below centre
    if last >= h - 2:
        return "long"  # runs out of the frame (portraits show down to the chest)
    if reach < 1.6:
        return "short"
    return "shoulder" if reach < 2.7 else "long"
