"""Upper-body garments: each outfit kind has its own silhouette details.

cardigan (open front, inner shirt, buttons), sweater (ribbed neck and hem, knit stripes),
hoodie (hood, pocket, drawstrings), jacket (lapels, inner shirt), suit (lapels, white shirt,
tie, matching trousers), kimono (crossed collar, obi, wide sleeves, long robe), t-shirt (short
sleeves, emblem), sailor uniform (sailor collar, neckerchief, pleated skirt), blouse (pointed
collar, buttons), dress (round collar, ribbon belt, flared skirt), sundress (straps, bare
shoulders, dotted skirt).
"""

from __future__ import annotations

from avatar_pipeline.imaging.offline.body import draw_skirt
from avatar_pipeline.imaging.offline.canvas import Canvas, Point
from avatar_pipeline.imaging.offline.character import RGB, CharacterIdentity, mix, scale

SHIRT_WHITE: RGB = (246, 246, 250)
UNIFORM_TOP: RGB = (250, 248, 242)

WAIST = {"dress": 3.3, "kimono": 3.55}  # where the torso piece ends for one-piece garments
SLEEVES = {"tshirt": "short", "dress": "short", "sundress": "none", "kimono": "wide"}


def sleeve_of(ident: CharacterIdentity) -> tuple[str, RGB]:
    """(sleeve kind, sleeve colour) of the outfit."""
    colour = UNIFORM_TOP if ident.outfit_kind == "uniform" else ident.outfit_rgb
    return SLEEVES.get(ident.outfit_kind, "long"), colour


def torso_outline(bw: float, bottom: float = 4.15) -> list[Point]:
    """The torso from the neckline down to ``bottom`` (the hem, or the waist of a dress)."""
    right = [
        (0.3, 1.58),
        (0.78 * bw, 1.64),
        (1.02 * bw, 1.78),
        (1.1 * bw, 2.05),
        (1.0 * bw, 2.5),
        (0.82 * bw, 3.2),
        (0.9 * bw, 3.75),
        (0.95 * bw, 4.15),
    ]
    right = [(x, y) for x, y in right if y <= bottom] + [(0.82 * bw, bottom)] * (bottom < 4.15)
    left = [(-x, y) for x, y in reversed(right)]
    return [*left, *right]


def draw_hood(cv: Canvas, ident: CharacterIdentity) -> None:
    """The hood of a hoodie, behind the head."""
    if ident.outfit_kind == "hoodie":
        cv.ellipse(0, 1.42, 1.05 * ident.body_width, 0.48, cv.shade(ident.outfit_rgb))


def draw_lower_garment(cv: Canvas, ident: CharacterIdentity, pose: str) -> None:
    """What hangs below the waist: skirts, dress skirts, the kimono robe."""
    kind = ident.outfit_kind
    bw = ident.body_width
    if kind == "dress":
        draw_skirt(cv, ident, pose, ident.outfit_rgb, 3.25, 5.75, 1.55)
    elif kind == "sundress":
        draw_skirt(cv, ident, pose, ident.outfit_rgb, 3.25, 5.5, 1.5)
        hem = 4.9 if pose == "sitting" else 5.5
        for i, (x, y) in enumerate(((-0.6, 3.9), (0.5, 4.2), (-0.2, 4.6), (0.9, 4.8), (-1.0, 5.0))):
            if y < hem - 0.15:
                cv.ellipse(x * bw, y, 0.08, 0.08, ident.accent_rgb, outline=i % 2 == 0)
    elif kind == "kimono":
        hem = 4.9 if pose == "sitting" else 7.2
        spread = 1.45 if pose == "walking" else 1.12
        cv.polygon(
            [(-0.88 * bw, 3.4), (0.88 * bw, 3.4), (spread * bw, hem), (-spread * bw, hem)],
            ident.outfit_rgb,
        )
        cv.line([(0.2, 3.5), (-0.35 * spread, hem)], cv.ink(ident.outfit_rgb), 0.03, raw=True)
    elif ident.bottom_kind == "skirt":
        colour = ident.outfit_rgb if kind == "uniform" else ident.bottom_rgb
        draw_skirt(cv, ident, pose, colour, 3.95, 5.3, 1.3)


def draw_upper_garment(cv: Canvas, ident: CharacterIdentity) -> None:
    """The torso garment, its neckline and its details (drawn after the neck)."""
    bw = ident.body_width
    kind = ident.outfit_kind
    base = UNIFORM_TOP if kind == "uniform" else ident.outfit_rgb
    accent = ident.accent_rgb
    dark = cv.shade(ident.outfit_rgb)
    if kind == "sundress":
        cv.polygon(torso_outline(bw, bottom=2.5), ident.skin_rgb)
        bodice = [
            (-0.92 * bw, 2.2),
            (-0.45, 2.08),
            (0.0, 2.22),
            (0.45, 2.08),
            (0.92 * bw, 2.2),
            (0.82 * bw, 3.2),
            (0.9 * bw, 3.45),
            (-0.9 * bw, 3.45),
            (-0.82 * bw, 3.2),
        ]
        cv.polygon(bodice, base)
        for side in (-1, 1):
            cv.line([(side * 0.55, 2.1), (side * 0.62, 1.63)], base, 0.07)
        return
    cv.polygon(torso_outline(bw, bottom=WAIST.get(kind, 4.15)), base)
    if cv.style.shading != "flat":  # a side shadow
        cv.polygon(
            [
                (0.7 * bw, 1.9),
                (1.02 * bw, 2.1),
                (0.94 * bw, 2.5),
                (0.78 * bw, 3.2),
                (0.86 * bw, 4.1),
                (0.66 * bw, 4.1),
                (0.62 * bw, 2.6),
            ],
            cv.shade(base),
            outline=False,
        )
    if kind == "cardigan":
        cv.polygon(
            [(-0.36, 1.6), (0.36, 1.6), (0.13, 3.0), (0.13, 4.12), (-0.13, 4.12), (-0.13, 3.0)],
            accent,
        )
        for y in (3.25, 3.6, 3.95):
            cv.ellipse(-0.24, y, 0.07, 0.07, mix(base, (255, 255, 255), 0.55))
        cv.polygon(
            [(-0.95 * bw, 3.98), (0.95 * bw, 3.98), (0.95 * bw, 4.15), (-0.95 * bw, 4.15)], dark
        )
    elif kind == "sweater":
        for y0 in (1.9, 2.08):
            cv.polygon(
                [(-1.08 * bw, y0), (1.08 * bw, y0), (1.1 * bw, y0 + 0.1), (-1.1 * bw, y0 + 0.1)],
                accent,
                outline=False,
            )
        cv.polygon(
            [(-0.95 * bw, 3.92), (0.95 * bw, 3.92), (0.95 * bw, 4.15), (-0.95 * bw, 4.15)], dark
        )
        _round_neck(cv, dark)
    elif kind == "hoodie":
        cv.polygon([(-0.62, 3.25), (0.62, 3.25), (0.78, 3.98), (-0.78, 3.98)], dark)
        _round_neck(cv, dark, width=0.45)
        for side in (-1, 1):
            cv.line([(side * 0.2, 1.72), (side * 0.24, 2.55)], accent, 0.045)
            cv.ellipse(side * 0.24, 2.6, 0.05, 0.07, accent)
    elif kind in ("jacket", "suit"):
        shirt = SHIRT_WHITE if kind == "suit" else accent
        cv.polygon(
            [(-0.36, 1.6), (0.36, 1.6), (0.2, 3.0), (0.16, 4.12), (-0.16, 4.12), (-0.2, 3.0)], shirt
        )
        if kind == "suit":
            cv.polygon([(-0.08, 1.62), (0.08, 1.62), (0.06, 1.8), (-0.06, 1.8)], accent)
            cv.polygon(
                [(-0.06, 1.8), (0.06, 1.8), (0.13, 2.85), (0.0, 3.02), (-0.13, 2.85)], accent
            )
        for side in (-1, 1):
            cv.polygon(
                [(side * 0.36, 1.6), (side * 0.66, 2.05), (side * 0.44, 2.2), (side * 0.22, 3.0)],
                dark,
            )
        for y in (3.3, 3.75):
            cv.ellipse(0.32, y, 0.07, 0.07, scale(base, 0.6))
    elif kind == "kimono":
        cv.polygon([(-0.3, 1.58), (0.3, 1.58), (-0.02, 2.4)], ident.skin_rgb)
        cv.line([(0.34, 1.58), (-0.25, 3.0)], accent, 0.14)
        cv.line([(-0.34, 1.58), (0.05, 2.45)], accent, 0.14)
        cv.polygon(
            [(-0.86 * bw, 2.95), (0.86 * bw, 2.95), (0.88 * bw, 3.55), (-0.88 * bw, 3.55)], accent
        )
        cv.line([(-0.86 * bw, 3.25), (0.86 * bw, 3.25)], scale(accent, 0.7), 0.04)
    elif kind == "tshirt":
        _round_neck(cv, dark)
        star = [
            (0.0, 2.2),
            (0.08, 2.42),
            (0.3, 2.44),
            (0.12, 2.58),
            (0.19, 2.8),
            (0.0, 2.66),
            (-0.19, 2.8),
            (-0.12, 2.58),
            (-0.3, 2.44),
            (-0.08, 2.42),
        ]
        cv.polygon(star, accent)
    elif kind == "uniform":
        cv.polygon(
            [(-0.9 * bw, 1.7), (-0.34, 1.6), (0.0, 2.35), (0.34, 1.6), (0.9 * bw, 1.7), (0.0, 2.7)],
            ident.outfit_rgb,
        )
        cv.line([(-0.7, 1.72), (0.0, 2.52), (0.7, 1.72)], UNIFORM_TOP, 0.035)
        cv.polygon([(-0.18, 2.35), (0.18, 2.35), (0.0, 2.6)], accent)
        cv.polygon([(-0.05, 2.55), (0.05, 2.55), (0.2, 3.1), (-0.2, 3.1)], accent)
    elif kind == "blouse":
        for side in (-1, 1):
            cv.polygon([(side * 0.34, 1.58), (0.0, 1.78), (side * 0.32, 2.05)], accent)
        for y in (2.25, 2.65, 3.05, 3.45):
            cv.ellipse(0.0, y, 0.055, 0.055, accent)
    elif kind == "dress":
        for side in (-1, 1):
            cv.ellipse(side * 0.22, 1.7, 0.24, 0.13, accent)
        cv.polygon(
            [(-0.84 * bw, 3.12), (0.84 * bw, 3.12), (0.86 * bw, 3.34), (-0.86 * bw, 3.34)], accent
        )
        cv.polygon([(0.0, 3.23), (0.3, 3.05), (0.3, 3.42)], accent)
        cv.polygon([(0.0, 3.23), (-0.3, 3.05), (-0.3, 3.42)], accent)


def _round_neck(cv: Canvas, colour: RGB, width: float = 0.36) -> None:
    pts = cv.arc_points(0, 1.55, width, 0.2, 0, 180, 12)
    cv.line(pts, colour, 0.08)


def draw_neck(cv: Canvas, ident: CharacterIdentity) -> None:
    skin = ident.skin_rgb
    cv.polygon([(-0.22, 0.8), (0.22, 0.8), (0.25, 1.7), (-0.25, 1.7)], skin)
    cv.polygon(
        [(-0.22, 0.8), (0.22, 0.8), (0.23, 1.12), (0.0, 1.22), (-0.23, 1.12)],
        cv.shade(skin),
        outline=False,
    )
