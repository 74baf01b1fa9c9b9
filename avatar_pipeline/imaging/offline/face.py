"""The head and the face: face shape, eyes, mouth, brows, blush and expression marks.

Everything here is drawn in head units (radius ~1 around (0, 0)). Each of the eight default
expressions gets its own eyes, brows, mouth and marks, so they read apart at a glance:
neutral (relaxed lids, straight closed mouth, eyes looking slightly aside, no blush), happy
(^ ^ eyes, open smile, sparkles), shy (half-lidded side glance, blush lines), flustered
(> < eyes, wavy mouth, heavy blush, sweat drop), sad (lowered lids, tears, gloom lines), angry
(V brows, narrowed eyes, gritted teeth, vein mark), surprised (wide eyes, "O" mouth, shock
lines), thinking (raised brow, upward glance, "..." thought bubble). The portrait anchor wears
"gentle" (a soft closed-mouth smile, eyes to the viewer), so the neutral expression is never
the anchor again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from avatar_pipeline.imaging.offline.canvas import INK, Canvas, Point
from avatar_pipeline.imaging.offline.character import RGB, CharacterIdentity, mix, scale

WHITE: RGB = (255, 255, 255)
MOUTH_RED: RGB = (150, 52, 66)
TONGUE: RGB = (236, 120, 132)
BLUSH: RGB = (242, 108, 132)
TEAR: RGB = (150, 206, 250)

EYE_SHAPES = {  # half-width, half-height, outer-corner lift
    "round": (0.22, 0.3, 0.0),
    "almond": (0.25, 0.25, 0.06),
    "droopy": (0.24, 0.28, -0.07),
    "sharp": (0.26, 0.2, 0.1),
}
CHIN_TAPER = {"round": (0.0, 1.06), "oval": (0.14, 1.14), "pointed": (0.32, 1.16)}


@dataclass(frozen=True)
class EyeLook:
    mode: str = "open"  # open | happy | squeeze
    openness: float = 1.0  # 1 = fully open; smaller lowers the upper lid
    gaze: Point = (0.0, 0.0)  # iris offset in eye half-sizes
    iris: float = 1.0  # iris size factor (small = shocked/angry)
    lid_slope: float = 0.0  # >0: lid lower at the nose (angry); <0: lower outside (sad)
    height: float = 1.0


EYES = {
    "neutral": EyeLook(openness=0.86, gaze=(0.5, 0.08)),
    "gentle": EyeLook(),
    "happy": EyeLook(mode="happy"),
    "shy": EyeLook(openness=0.68, gaze=(0.28, 0.2)),
    "flustered": EyeLook(mode="squeeze"),
    "sad": EyeLook(openness=0.72, gaze=(0.0, 0.22), lid_slope=-0.5),
    "angry": EyeLook(openness=0.72, iris=0.82, lid_slope=0.75),
    "surprised": EyeLook(iris=0.66, height=1.2),
    "thinking": EyeLook(openness=0.9, gaze=(0.3, -0.22)),
}
BROWS = {  # y of inner, middle, outer point (left brow; thinking raises the right one)
    "neutral": (-0.12, -0.15, -0.13),
    "gentle": (-0.16, -0.21, -0.16),
    "happy": (-0.24, -0.32, -0.25),
    "shy": (-0.26, -0.21, -0.14),
    "flustered": (-0.3, -0.23, -0.12),
    "sad": (-0.32, -0.23, -0.09),
    "angry": (-0.01, -0.12, -0.25),
    "surprised": (-0.4, -0.5, -0.42),
    "thinking": (-0.16, -0.21, -0.16),
}
BLUSH_AMOUNT = {
    "neutral": 0.0,
    "gentle": 0.2,
    "happy": 0.32,
    "shy": 0.5,
    "flustered": 0.7,
    "sad": 0.08,
    "angry": 0.0,
    "surprised": 0.16,
    "thinking": 0.12,
}


def face_outline(shape: str) -> list[Point]:
    taper, chin = CHIN_TAPER.get(shape, CHIN_TAPER["round"])
    pts: list[Point] = []
    for i in range(48):
        t = 2 * math.pi * i / 48
        s = math.sin(t)
        if s > 0:  # lower half: taper towards the chin
            pts.append((math.cos(t) * (1 - taper * s**2), chin * s))
        else:
            pts.append((math.cos(t), 1.02 * s))
    return pts


def draw_head(cv: Canvas, ident: CharacterIdentity) -> None:
    skin = ident.skin_rgb
    for side in (-1, 1):
        cv.ellipse(side * 0.97, 0.28, 0.15, 0.2, skin)
    cv.polygon(face_outline(ident.face_shape), skin)


def _lash_colour(ident: CharacterIdentity) -> RGB:
    return mix(scale(ident.hair_rgb, 0.45), INK, 0.6)


def _eye(cv: Canvas, ident: CharacterIdentity, side: int, look: EyeLook, realistic: bool) -> None:
    hw, hh, lift = EYE_SHAPES.get(ident.eye_shape, EYE_SHAPES["round"])
    size = ident.eye_size * (0.72 if realistic else 1.0)
    hw, hh = hw * size, hh * size * look.height
    cx, cy = side * 0.4, 0.3
    lash = _lash_colour(ident)
    inner_x, outer_x = cx - side * hw, cx + side * hw * 1.1
    if look.mode == "happy":
        pts = [
            (inner_x + (outer_x - inner_x) * s, cy + 0.08 - 0.5 * hh * math.sin(math.pi * s))
            for s in (i / 10 for i in range(11))
        ]
        cv.line(pts, lash, 0.075)
        return
    if look.mode == "squeeze":
        apex = (cx - side * 0.75 * hw, cy)
        cv.line(
            [(cx + side * hw, cy - 0.55 * hh), apex, (cx + side * hw, cy + 0.5 * hh)], lash, 0.08
        )
        return
    skin = ident.skin_rgb
    cv.ellipse(cx, cy, hw, hh, WHITE, outline=False)
    gx, gy = look.gaze
    ix, iy = cx + gx * hw * 0.45, cy + 0.06 * hh + gy * hh * 0.4
    irx, iry = 0.74 * hw * look.iris, 0.86 * hh * look.iris
    cv.ellipse(
        ix, iy, irx, iry, ident.eye_rgb, outline_colour=scale(ident.eye_rgb, 0.5), width=cv.w(0.02)
    )
    cv.ellipse(ix, iy + 0.35 * iry, 0.7 * irx, 0.5 * iry, mix(ident.eye_rgb, WHITE, 0.3), False)
    cv.ellipse(ix, iy, 0.42 * irx, 0.46 * iry, scale(ident.eye_rgb, 0.35), outline=False)
    cv.ellipse(ix - 0.35 * irx, iy - 0.4 * iry, 0.3 * irx, 0.26 * iry, WHITE, outline=False)
    cv.ellipse(ix + 0.35 * irx, iy + 0.45 * iry, 0.14 * irx, 0.12 * iry, WHITE, outline=False)
    # Upper lid: skin above the lid line hides the top of the eye when it is not fully open.
    drop = (1 - look.openness) * 1.5 * hh
    y_in = cy - 0.72 * hh + drop + max(0.0, look.lid_slope) * 0.6 * hh
    y_out = cy - 0.72 * hh + drop - lift * size + max(0.0, -look.lid_slope) * 0.6 * hh
    arch = 0.3 * hh * (1.0 if look.openness >= 1 else 0.35)
    lid = [
        (
            inner_x + (outer_x - inner_x) * s,
            y_in + (y_out - y_in) * s - arch * math.sin(math.pi * s),
        )
        for s in (i / 12 for i in range(13))
    ]
    top = cy - hh * 1.35
    cv.polygon([(inner_x - side * 0.04, top), *lid, (outer_x + side * 0.04, top)], skin, False)
    cv.line(lid, lash, 0.075 if not realistic else 0.05)
    cv.line([lid[-1], (outer_x + side * 0.08, lid[-1][1] - 0.06)], lash, 0.05)
    cv.line([(cx + side * 0.1 * hw, cy + hh * 0.98), (cx + side * hw, cy + hh * 0.55)], lash, 0.025)


def _mouth(cv: Canvas, expression: str) -> None:
    ink = mix(INK, MOUTH_RED, 0.45)
    y = 0.74
    if expression == "happy":
        top = [(-0.24, y - 0.04), (0.24, y - 0.04)]
        cv.polygon([*top, *cv.arc_points(0, y - 0.04, 0.24, 0.24, 0, 180, 14)], MOUTH_RED)
        cv.ellipse(0, y + 0.11, 0.12, 0.06, TONGUE, outline=False)
    elif expression == "surprised":
        cv.ellipse(0, y + 0.06, 0.1, 0.14, MOUTH_RED)
    elif expression == "sad":
        cv.line(cv.arc_points(0, y + 0.1, 0.17, 0.09, 200, 340, 10), ink, 0.045)
    elif expression == "angry":
        pts = [
            (-0.2, y + 0.08),
            (-0.14, y - 0.01),
            (0.14, y - 0.01),
            (0.2, y + 0.08),
            (0.12, y + 0.13),
            (-0.12, y + 0.13),
        ]
        cv.polygon(pts, WHITE)
        cv.line([(-0.17, y + 0.065), (0.17, y + 0.065)], ink, 0.02)
        for x in (-0.07, 0.0, 0.07):
            cv.line([(x, y), (x, y + 0.13)], ink, 0.015)
    elif expression in ("shy", "flustered"):
        n, amp, half = (4, 0.025, 0.1) if expression == "shy" else (7, 0.04, 0.2)
        pts = [(-half + 2 * half * i / n, y + (amp if i % 2 else -amp)) for i in range(n + 1)]
        cv.line(pts, ink, 0.04)
    elif expression == "thinking":
        cv.line([(0.0, y + 0.03), (0.18, y - 0.02), (0.22, y + 0.01)], ink, 0.04)
    elif expression == "gentle":  # the portrait anchor's soft closed-mouth smile
        cv.line(cv.arc_points(0, y - 0.06, 0.12, 0.08, 30, 150, 8), ink, 0.04)
    else:  # neutral: a small straight closed mouth
        cv.line([(-0.09, y + 0.01), (0.09, y + 0.01)], ink, 0.04)


def _blush(cv: Canvas, ident: CharacterIdentity, expression: str) -> None:
    amount = BLUSH_AMOUNT.get(expression, 0.15)
    if amount <= 0:
        return
    colour = mix(ident.skin_rgb, BLUSH, amount)
    for side in (-1, 1):
        cv.ellipse(side * 0.55, 0.58, 0.2, 0.09, colour, outline=False)
    if expression == "flustered":
        cv.ellipse(0, 0.56, 0.42, 0.09, colour, outline=False)
    if expression in ("shy", "flustered"):
        hatch = scale(mix(ident.skin_rgb, BLUSH, 0.9), 0.85)
        xs = (-0.1, 0.0, 0.1) if expression == "shy" else (-0.14, -0.07, 0.0, 0.07, 0.14)
        for side in (-1, 1):
            for dx in xs:
                x = side * 0.55 + dx
                cv.line([(x + 0.03, 0.53), (x - 0.03, 0.63)], hatch, 0.02)


def draw_features(cv: Canvas, ident: CharacterIdentity, expression: str, realistic: bool) -> None:
    """Eyes, nose, mouth and blush (drawn before the front hair)."""
    _blush(cv, ident, expression)
    look = EYES.get(expression, EYES["neutral"])
    for side in (-1, 1):
        _eye(cv, ident, side, look, realistic)
    cv.line([(0.03, 0.5), (0.0, 0.55)], scale(ident.skin_rgb, 0.72), 0.03)
    _mouth(cv, expression)
    if expression == "sad":
        for side in (-1, 1):
            _drop(cv, side * 0.62, 0.62, 0.07, TEAR)


def _drop(cv: Canvas, x: float, y: float, r: float, colour: RGB) -> None:
    pts = [(x, y - 2.4 * r), *cv.arc_points(x, y, r, r, -40, 220, 14)]
    cv.polygon(pts, colour)
    cv.ellipse(x - 0.35 * r, y - 0.1 * r, 0.25 * r, 0.3 * r, WHITE, outline=False)


def draw_brows_and_marks(cv: Canvas, ident: CharacterIdentity, expression: str) -> None:
    """Brows (over the bangs, as in anime) and the expression's marks around the head."""
    brow = (
        scale(ident.hair_rgb, 0.6) if sum(ident.hair_rgb) > 200 else mix(ident.hair_rgb, INK, 0.5)
    )
    y_in, y_mid, y_out = BROWS.get(expression, BROWS["neutral"])
    thick = 0.08 if expression == "angry" else 0.05
    for side in (-1, 1):
        lift = -0.2 if expression == "thinking" and side == 1 else 0.0
        pts = [(side * 0.18, y_in + lift), (side * 0.4, y_mid + lift), (side * 0.62, y_out + lift)]
        cv.line(pts, brow, thick)
    if expression == "flustered":
        _drop(cv, 1.08, -0.12, 0.1, TEAR)
        for i in range(3):
            a = math.radians(-60 + i * 22)
            cv.line(
                [
                    (-1.2 * math.cos(a) - 0.05, 0.1 + 1.0 * math.sin(a)),
                    (-1.45 * math.cos(a) - 0.05, 0.1 + 1.25 * math.sin(a)),
                ],
                INK,
                0.035,
            )
    elif expression == "sad":
        gloom = mix(ident.hair_rgb, (90, 100, 170), 0.7)
        for x in (-0.36, -0.12, 0.12, 0.36):
            cv.line([(x, -0.46), (x, -0.06)], gloom, 0.035)
    elif expression == "angry":
        vein = (214, 40, 50)
        cx, cy, r = 0.66, -0.62, 0.14
        for a in (45, 135, 225, 315):
            cv.line(
                cv.arc_points(
                    cx + r * math.cos(math.radians(a)) * 1.1,
                    cy + r * math.sin(math.radians(a)) * 1.1,
                    r * 0.6,
                    r * 0.6,
                    a + 100,
                    a + 260,
                    6,
                ),
                vein,
                0.045,
            )
    elif expression == "surprised":
        for side in (-1, 1):
            for dy in (-0.55, -0.2, 0.15):
                cv.line([(side * 1.3, dy), (side * 1.6, dy - 0.15)], INK, 0.04)
    elif expression == "thinking":
        cv.ellipse(1.22, -0.86, 0.07, 0.07, WHITE)
        cv.ellipse(1.38, -1.02, 0.11, 0.11, WHITE)
        cv.ellipse(1.72, -1.24, 0.4, 0.26, WHITE)
        for dx in (-0.16, 0.0, 0.16):
            cv.ellipse(1.72 + dx, -1.24, 0.045, 0.045, INK, outline=False)
    elif expression == "happy":
        for sx, sy, r in ((-1.45, -0.9, 0.16), (1.45, -0.55, 0.12), (1.3, -1.25, 0.09)):
            cv.polygon(
                [
                    (sx, sy - r),
                    (sx + 0.25 * r, sy - 0.25 * r),
                    (sx + r, sy),
                    (sx + 0.25 * r, sy + 0.25 * r),
                    (sx, sy + r),
                    (sx - 0.25 * r, sy + 0.25 * r),
                    (sx - r, sy),
                    (sx - 0.25 * r, sy - 0.25 * r),
                ],
                (255, 214, 80),
            )
