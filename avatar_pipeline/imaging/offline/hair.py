"""Hair (back layer, bangs, side locks, ahoge) and hair accessories, in head units.

Length is what reads first: ``short`` is a bob ending at the jaw, ``shoulder`` reaches the
shoulders (y ~ 2), ``long`` flows past them down the back (y ~ 4.3). The bangs style, side
locks, ahoge and volume are the seeded details.
"""

from __future__ import annotations

import math

from avatar_pipeline.imaging.offline.canvas import Canvas, Point
from avatar_pipeline.imaging.offline.character import CharacterIdentity, mix, scale

HAIR_END_Y = {"short": 1.0, "shoulder": 2.05, "long": 4.3}


def _tips(x0: float, x1: float, y: float, n: int, depth: float) -> list[Point]:
    """A jagged edge of ``n`` strand tips from x0 to x1 hanging at ``y``."""
    pts: list[Point] = []
    for i in range(n + 1):
        x = x0 + (x1 - x0) * i / n
        pts.append((x, y - (0 if i % 2 else depth)))
    return pts


def draw_back_hair(cv: Canvas, ident: CharacterIdentity) -> None:
    """The hair behind the head and body (drawn first)."""
    v = ident.hair_volume
    colour = cv.shade(ident.hair_rgb, 0.9)
    end = HAIR_END_Y.get(ident.hair_length, 2.05)
    top = cv.arc_points(0, -0.05, 1.18 * v, 1.24 * v, 180, 360, 20)
    if ident.hair_length == "short":
        sides = [(1.2 * v, 0.35), (1.16 * v, 0.85), (0.9, end)]
        bottom = _tips(0.9, -0.9, end + 0.05, 6, 0.1)
        left = [(-1.16 * v, 0.85), (-1.2 * v, 0.35)]
    else:
        flare = 1.38 if ident.hair_length == "shoulder" else 1.5
        mid = (end + 0.2) / 2
        sides = [(1.22 * v, 0.4), (flare * v, mid), (flare * v * 0.95, end)]
        bottom = _tips(flare * v * 0.95, -flare * v * 0.95, end + 0.1, 8, 0.22)
        left = [(-flare * v, mid), (-1.22 * v, 0.4)]
    cv.polygon([*top, *sides, *bottom, *left], colour)


STRAND_END_Y = {"shoulder": 2.2, "long": 3.9}


def draw_front_strands(cv: Canvas, ident: CharacterIdentity) -> None:
    """Locks that fall in front of the shoulders: to the collarbone (shoulder) or chest (long)."""
    end = STRAND_END_Y.get(ident.hair_length)
    if end is None:
        return
    hair = ident.hair_rgb
    for side in (-1, 1):
        outer = [(side * 1.1, 0.3), (side * 1.2, 1.2), (side * 1.16, end - 0.4), (side * 1.08, end)]
        inner = [
            (side * 0.94, end - 0.22),
            (side * 0.88, end - 0.05),
            (side * 0.78, end - 0.5),
            (side * 0.8, 1.2),
            (side * 0.74, 0.5),
        ]
        cv.polygon([*outer, *inner], hair)
        cv.line([(side * 0.98, 0.9), (side * 1.0, end - 0.5)], cv.shade(hair, 0.8), 0.03)


def _bangs_edge(style: str) -> list[Point]:
    """The lower edge of the bangs, from the right temple to the left one."""
    if style == "swept":
        return [
            (0.86, -0.42),
            (0.5, -0.2),
            (0.42, -0.36),
            (0.1, -0.02),
            (0.0, -0.22),
            (-0.35, 0.08),
            (-0.4, -0.12),
            (-0.78, 0.12),
        ]
    if style == "parted":
        return [
            (0.88, 0.05),
            (0.62, -0.12),
            (0.5, 0.0),
            (0.22, -0.42),
            (0.04, -0.62),
            (-0.04, -0.62),
            (-0.22, -0.42),
            (-0.5, 0.0),
            (-0.62, -0.12),
            (-0.88, 0.05),
        ]
    if style == "spiky":
        return [
            (0.86, -0.05),
            (0.7, -0.3),
            (0.52, 0.02),
            (0.36, -0.3),
            (0.18, 0.04),
            (0.0, -0.28),
            (-0.18, 0.04),
            (-0.36, -0.3),
            (-0.52, 0.02),
            (-0.7, -0.3),
            (-0.86, -0.05),
        ]
    # straight (blunt fringe with small notches)
    return [(0.86, -0.1), *_tips(0.7, -0.7, -0.1, 10, 0.07), (-0.86, -0.1)]


def draw_front_hair(cv: Canvas, ident: CharacterIdentity) -> None:
    """Hair cap, bangs, side locks and ahoge (drawn over the face)."""
    v = ident.hair_volume
    hair = ident.hair_rgb
    lock_end = 1.25 if ident.side_locks else 0.72
    cap = cv.arc_points(0, -0.06, 1.12 * v, 1.2 * v, 180, 360, 24)
    right = [(1.1 * v, 0.25), (1.06, lock_end - 0.2), (0.96, lock_end), (0.86, 0.3)]
    left = [(-0.86, 0.3), (-0.96, lock_end), (-1.06, lock_end - 0.2), (-1.1 * v, 0.25)]
    if ident.ahoge:
        cv.polygon(
            [(0.0, -1.2 * v), (0.18, -1.62), (0.42, -1.72), (0.26, -1.56), (0.12, -1.2 * v)], hair
        )
    cv.polygon([*cap, *right, *_bangs_edge(ident.bangs), *left], hair)
    if cv.style.shading != "flat":  # a highlight band ("angel ring") across the crown
        shine = mix(hair, (255, 255, 255), 0.3 if sum(hair) < 600 else 0.6)
        if sum(hair) > 690:
            shine = scale(hair, 0.9)
        band = cv.arc_points(0, -0.1, 0.82 * v, 0.86 * v, 205, 335, 12)
        cv.line(band, shine, 0.07)
    _accessory(cv, ident)


def _accessory(cv: Canvas, ident: CharacterIdentity) -> None:
    kind, colour = ident.accessory, ident.accessory_rgb
    v = ident.hair_volume
    if kind == "ribbon":
        cx, cy = 0.8 * v, -0.86 * v
        cv.polygon([(cx, cy), (cx - 0.34, cy - 0.26), (cx - 0.3, cy + 0.2)], colour)
        cv.polygon([(cx, cy), (cx + 0.34, cy - 0.2), (cx + 0.3, cy + 0.26)], colour)
        cv.ellipse(cx, cy, 0.09, 0.09, scale(colour, 0.85))
    elif kind == "hairclip":
        for dy in (0.0, 0.16):
            cx, cy = -0.62 + dy * 0.5, -0.46 + dy
            cv.polygon(
                [
                    (cx - 0.22, cy - 0.05),
                    (cx + 0.2, cy - 0.13),
                    (cx + 0.22, cy - 0.05),
                    (cx - 0.2, cy + 0.03),
                ],
                colour,
            )
    elif kind == "flower":
        cx, cy = 0.84 * v, -0.72 * v
        for i in range(5):
            a = math.radians(90 + i * 72)
            cv.ellipse(cx + 0.13 * math.cos(a), cy + 0.13 * math.sin(a), 0.1, 0.1, colour)
        cv.ellipse(cx, cy, 0.07, 0.07, (250, 214, 80))
    elif kind == "headband":
        band = cv.arc_points(0, 0.0, 1.1 * v, 0.98 * v, 196, 344, 16)
        cv.line(band, cv.ink(colour), 0.17, raw=True)
        cv.line(band, colour, 0.12)


def draw_glasses(cv: Canvas, ident: CharacterIdentity) -> None:
    """Round glasses over the eyes (drawn after the eyes, before the bangs)."""
    if ident.accessory != "glasses":
        return
    rim = scale(ident.accessory_rgb, 0.45)
    for side in (-1, 1):
        cv.ellipse(side * 0.42, 0.32, 0.3, 0.26, None, outline_colour=rim, width=cv.w(0.04))
    cv.line([(-0.13, 0.26), (0.13, 0.26)], rim, 0.035)
