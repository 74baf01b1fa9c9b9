"""The body in each pose: skeleton, arms and hands, legs and shoes, bottoms, and the bench.

Units as in ``canvas``: head centre (0, 0), shoulders at y ~ 1.85, hips ~ 4.0, ankles ~ 8.1.
x < 0 is the viewer's left. Poses: standing (the reference stance of the full-body anchor:
arms relaxed at the sides), hands_on_hips (the model sheet's standing pose: elbows out, wrists
on the hips), waving (the viewer's-right arm
raised beside the head, open hand, motion marks), walking (legs apart mid-stride, back foot
lifted, speed lines), sitting (on a wooden bench, knees bent, hands on the lap; the whole body
sits lower). The thinking expression bends the viewer's-left arm so the hand rests on the chin.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from avatar_pipeline.imaging.offline.canvas import INK, Canvas, Point
from avatar_pipeline.imaging.offline.character import RGB, CharacterIdentity, mix, scale

WOOD: RGB = (184, 128, 82)
SOCK: RGB = (250, 250, 250)
SITTING_DROP = 1.8  # how far the sitting figure is lowered so its feet meet the floor


@dataclass(frozen=True)
class Skeleton:
    left_arm: tuple[Point, Point, Point]  # shoulder, elbow, wrist
    right_arm: tuple[Point, Point, Point]
    left_leg: tuple[Point, Point, Point]  # hip, knee, ankle
    right_leg: tuple[Point, Point, Point]
    lifted_foot: str | None = None  # "right" when walking


def skeleton(
    pose: str, expression: str, bw: float, head_shift: Point = (0.0, 0.0), swing: float = 0.0
) -> Skeleton:
    """Joint positions for ``pose``; ``head_shift`` moves the chin hand, ``swing`` the arms."""
    sl, sr = (-0.9 * bw, 2.0), (0.9 * bw, 2.0)
    hang_l = (sl, (-1.28 * bw - swing, 2.95), (-1.38 * bw - 1.6 * swing, 3.95))
    hang_r = (sr, (1.28 * bw + swing, 2.95), (1.38 * bw + 1.6 * swing, 3.95))
    legs_l = ((-0.42, 4.0), (-0.44, 6.15), (-0.45, 8.1))
    legs_r = ((0.42, 4.0), (0.44, 6.15), (0.45, 8.1))
    left_arm, right_arm, lifted = hang_l, hang_r, None
    if pose == "waving":
        right_arm = (sr, (1.85 * bw, 1.1), (2.0 * bw, -0.05))
    elif pose == "hands_on_hips":  # elbows out, wrists on the hips
        left_arm = (sl, (-1.82 * bw - swing, 2.85), (-0.98 * bw, 3.72))
        right_arm = (sr, (1.82 * bw + swing, 2.85), (0.98 * bw, 3.72))
    elif pose == "walking":
        left_arm = (sl, (-1.4 * bw, 2.8), (-1.8 * bw, 3.55))
        right_arm = (sr, (1.2 * bw, 2.95), (1.12 * bw, 3.95))
        legs_l = ((-0.42, 4.0), (-0.74, 6.05), (-1.08, 8.05))
        legs_r = ((0.42, 4.0), (0.8, 5.85), (1.02, 7.55))
        lifted = "right"
    elif pose == "sitting":
        left_arm = (sl, (-1.25 * bw, 3.05), (-0.85, 4.3))
        right_arm = (sr, (1.25 * bw, 3.05), (0.85, 4.3))
        legs_l = ((-0.45, 4.05), (-0.66, 4.75), (-0.7, 6.4))
        legs_r = ((0.45, 4.05), (0.66, 4.75), (0.7, 6.4))
    if expression == "thinking":
        dx, dy = head_shift
        left_arm = (sl, (-0.98 * bw, 2.9), (-0.34 + dx, 1.32 + dy))
    return Skeleton(left_arm, right_arm, legs_l, legs_r, lifted)


def draw_floor_shadow(cv: Canvas, background: RGB, pose: str) -> None:
    width = 2.4 if pose == "walking" else 1.7
    cv.ellipse(0, 8.38, width, 0.24, scale(background, 0.86), outline=False)


def draw_bench(cv: Canvas) -> None:
    """A simple wooden bench under the sitting figure (in the lowered body's units)."""
    for x in (-1.75, 1.6):
        cv.polygon([(x, 4.6), (x + 0.15, 4.6), (x + 0.15, 6.6), (x, 6.6)], scale(WOOD, 0.8))
    cv.polygon([(-1.8, 4.0), (1.8, 4.0), (2.0, 4.35), (-2.0, 4.35)], mix(WOOD, (255,) * 3, 0.15))
    cv.polygon([(-2.0, 4.35), (2.0, 4.35), (2.0, 4.62), (-2.0, 4.62)], WOOD)


def _hand_centre(arm: tuple[Point, Point, Point]) -> Point:
    (ex, ey), (wx, wy) = arm[1], arm[2]
    d = math.hypot(wx - ex, wy - ey) or 1.0
    return (wx + (wx - ex) / d * 0.1, wy + (wy - ey) / d * 0.1)


def draw_arm(
    cv: Canvas,
    ident: CharacterIdentity,
    arm: tuple[Point, Point, Point],
    sleeve: str,
    sleeve_rgb: RGB,
    hand: str = "mitten",
) -> None:
    """One arm: skin, then the sleeve (long / short / wide / none), then the hand."""
    skin = ident.skin_rgb
    shoulder, elbow, wrist = arm
    if sleeve in ("long", "wide"):
        cv.limb(arm, 0.42 if sleeve == "long" else 0.56, sleeve_rgb)
        if sleeve == "wide":  # kimono sleeve hanging below the forearm
            (ex, ey), (wx, wy) = elbow, wrist
            cv.polygon(
                [(ex, ey), (wx, wy), (wx + 0.05, wy + 0.75), (ex + 0.1, ey + 0.9)],
                cv.shade(sleeve_rgb),
            )
        else:
            cuff = (
                wrist[0] + (elbow[0] - wrist[0]) * 0.12,
                wrist[1] + (elbow[1] - wrist[1]) * 0.12,
            )
            cv.limb([cuff, wrist], 0.44, cv.shade(sleeve_rgb))
    else:
        cv.limb(arm, 0.34, skin)
        if sleeve == "short":
            mid = (
                shoulder[0] + (elbow[0] - shoulder[0]) * 0.55,
                shoulder[1] + (elbow[1] - shoulder[1]) * 0.55,
            )
            cv.limb([shoulder, mid], 0.5, sleeve_rgb)
    hx, hy = _hand_centre(arm)
    if hand == "open":
        for a in (-150, -120, -95, -70, -40):
            r = math.radians(a)
            cv.limb([(hx, hy), (hx + 0.32 * math.cos(r), hy + 0.32 * math.sin(r))], 0.09, skin)
        cv.ellipse(hx, hy, 0.2, 0.19, skin)
        for k in (0, 1):  # motion arcs beside the waving hand
            cv.line(cv.arc_points(hx, hy, 0.5 + 0.16 * k, 0.5 + 0.16 * k, -30, 30, 6), INK, 0.035)
            cv.line(cv.arc_points(hx, hy, 0.5 + 0.16 * k, 0.5 + 0.16 * k, 150, 210, 6), INK, 0.035)
    elif hand == "chin":
        cv.ellipse(hx, hy, 0.2, 0.18, skin)
        cv.limb([(hx + 0.06, hy - 0.1), (hx + 0.12, hy - 0.42)], 0.08, skin)
    else:
        cv.ellipse(hx, hy, 0.19, 0.19, skin)


def draw_legs(cv: Canvas, ident: CharacterIdentity, skel: Skeleton, pose: str) -> None:
    """Legs with the bottom garment's trouser/shorts legs, socks and shoes."""
    skin, bottom = ident.skin_rgb, ident.bottom_rgb
    kind = ident.bottom_kind
    if ident.outfit_kind == "suit":
        bottom = ident.outfit_rgb
    if pose == "sitting":
        if kind in ("trousers", "shorts"):  # the lap, seen from the front
            _pelvis(cv, ident, skel, bottom, 0.62)
        elif kind == "none" and ident.outfit_kind != "kimono":
            _pelvis(cv, ident, skel, skin, 0.62)
    for name, leg in (("left", skel.left_leg), ("right", skel.right_leg)):
        hip, knee, ankle = leg
        if kind == "trousers":
            cv.limb(leg, 0.52, bottom)
            if pose == "sitting":  # the thigh comes towards the viewer: a big round knee
                cv.ellipse(knee[0], knee[1] - 0.05, 0.34, 0.3, bottom)
        else:
            cv.limb(leg, 0.4, skin)
            if pose == "sitting":
                cv.ellipse(knee[0], knee[1] - 0.05, 0.3, 0.27, skin)
            if kind == "shorts":
                end = (hip[0] + (knee[0] - hip[0]) * 0.45, hip[1] + (knee[1] - hip[1]) * 0.45)
                cv.limb([hip, end], 0.56, bottom)
            elif kind == "skirt":
                top = (ankle[0] + (knee[0] - ankle[0]) * 0.3, ankle[1] + (knee[1] - ankle[1]) * 0.3)
                cv.limb([top, ankle], 0.42, SOCK)
        lifted = skel.lifted_foot == name
        rx, ry = (0.24, 0.15) if lifted else (0.3, 0.17)
        dx = 0.08 if ankle[0] > 0 else -0.08
        cv.ellipse(ankle[0] + dx, ankle[1] + (0.05 if lifted else 0.16), rx, ry, ident.shoe_rgb)
    if kind in ("trousers", "shorts") and pose != "sitting":
        _pelvis(cv, ident, skel, bottom, 0.55)
    if pose == "walking":
        for y, x0 in ((4.6, -2.0), (5.3, -2.3), (6.0, -2.0)):
            cv.line([(x0, y), (x0 + 0.55, y)], INK, 0.04)
        cv.ellipse(1.45, 7.95, 0.16, 0.1, (236, 232, 226))
        cv.ellipse(1.7, 7.85, 0.11, 0.07, (236, 232, 226))


def _pelvis(cv: Canvas, ident: CharacterIdentity, skel: Skeleton, colour: RGB, drop: float) -> None:
    lh, rh = skel.left_leg[0], skel.right_leg[0]
    bw = ident.body_width
    cv.polygon(
        [
            (-0.93 * bw, 3.9),
            (0.93 * bw, 3.9),
            (rh[0] + 0.3, rh[1] + drop),
            (lh[0] - 0.3, lh[1] + drop),
        ],
        colour,
    )


def draw_skirt(
    cv: Canvas,
    ident: CharacterIdentity,
    pose: str,
    colour: RGB,
    waist: float,
    hem: float,
    flare: float,
) -> None:
    """A pleated skirt (or a dress's skirt) from ``waist`` to ``hem``; sitting drapes the lap."""
    bw = ident.body_width
    if pose == "sitting":
        hem, flare = min(hem, 4.9), max(flare, 1.35)
    elif pose == "walking":
        flare *= 1.12
    top = 0.86 * bw
    pts = [(-top, waist), (top, waist), (flare * bw, hem), (-flare * bw, hem)]
    cv.polygon(pts, colour)
    fold = cv.shade(colour)
    for i in (-2, -1, 0, 1, 2):
        cv.line([(i * top * 0.35, waist + 0.15), (i * flare * bw * 0.38, hem - 0.03)], fold, 0.035)
