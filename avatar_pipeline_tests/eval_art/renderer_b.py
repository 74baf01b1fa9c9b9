"""A second, independent character drawing routine (not the product's offline renderer).

Deliberately different construction: chibi proportions (the head is ~40 % of the figure),
coloured outlines (a darker shade of each fill, not ink), a drop-shade under every part instead
of cel shadows, tall oval eyes with highlights, hair built from a back mass, a fringe of
rounded locks and optional tails/buns, rounded-rectangle limbs. Draws on a transparent canvas
(RGBA) at 2x and downsamples.
"""

from __future__ import annotations

import colorsys
import math
import random
from dataclasses import dataclass, replace

from PIL import Image, ImageDraw

RGB = tuple[int, int, int]
HAIR_STYLES = ("bob", "long", "spiky", "twintails", "ponytail", "buns")
OUTFITS = ("tunic", "dress", "coat", "overalls")
ACCESSORIES = ("none", "hat", "scarf", "bow", "headphones")
EXPRESSIONS = ("neutral", "happy", "sad", "angry", "surprised", "shy", "thinking", "flustered")
POSES = ("standing", "waving", "sitting", "walking")


@dataclass(frozen=True)
class CharacterB:
    hair: RGB
    hair_style: str
    skin: RGB
    eyes: RGB
    outfit: RGB
    outfit_kind: str
    accent: RGB
    bottom: RGB
    shoes: RGB
    accessory: str
    accessory_rgb: RGB
    head_ratio: float  # head radius / figure unit
    body_width: float


def _hsl(h: float, s: float, l_: float) -> RGB:
    r, g, b = colorsys.hls_to_rgb(h % 1.0, l_, s)
    return (round(r * 255), round(g * 255), round(b * 255))


def random_colour(rng: random.Random) -> RGB:
    return _hsl(rng.random(), rng.uniform(0.35, 0.9), rng.uniform(0.25, 0.75))


SKINS = ((255, 224, 196), (241, 194, 150), (224, 172, 125), (198, 134, 90), (141, 85, 54),
         (255, 236, 222), (233, 196, 172))  # fmt: skip


def random_character(rng: random.Random) -> CharacterB:
    return CharacterB(
        hair=random_colour(rng),
        hair_style=rng.choice(HAIR_STYLES),
        skin=rng.choice(SKINS),
        eyes=_hsl(rng.random(), rng.uniform(0.5, 0.9), rng.uniform(0.3, 0.55)),
        outfit=random_colour(rng),
        outfit_kind=rng.choice(OUTFITS),
        accent=random_colour(rng),
        bottom=random_colour(rng),
        shoes=_hsl(rng.random(), rng.uniform(0.1, 0.6), rng.uniform(0.15, 0.45)),
        accessory=rng.choice(ACCESSORIES),
        accessory_rgb=random_colour(rng),
        head_ratio=rng.uniform(0.95, 1.12),
        body_width=rng.uniform(0.85, 1.15),
    )


def with_traits(c: CharacterB, **changes: object) -> CharacterB:
    return replace(c, **changes)  # type: ignore[arg-type]


def _dark(c: RGB, k: float = 0.6) -> RGB:
    return (round(c[0] * k), round(c[1] * k), round(c[2] * k))


class _Pen:
    def __init__(self, draw: ImageDraw.ImageDraw, ppu: float, origin: tuple[float, float]):
        self.d, self.ppu, self.o = draw, ppu, origin
        self.ow = max(2, round(ppu * 0.07))

    def p(self, x: float, y: float) -> tuple[float, float]:
        return (self.o[0] + x * self.ppu, self.o[1] + y * self.ppu)

    def ell(self, cx: float, cy: float, rx: float, ry: float, fill: RGB, shade: bool = True,
            outline: bool = True) -> None:  # fmt: skip
        x0, y0 = self.p(cx - rx, cy - ry)
        x1, y1 = self.p(cx + rx, cy + ry)
        if shade:
            s = self.ppu * 0.06
            self.d.ellipse((x0 + s, y0 + s, x1 + s, y1 + s), fill=_dark(fill, 0.75))
        self.d.ellipse((x0, y0, x1, y1), fill=fill, outline=_dark(fill) if outline else None,
                       width=self.ow if outline else 0)  # fmt: skip

    def poly(self, pts: list[tuple[float, float]], fill: RGB, shade: bool = True) -> None:
        xy = [self.p(x, y) for x, y in pts]
        if shade:
            s = self.ppu * 0.06
            self.d.polygon([(x + s, y + s) for x, y in xy], fill=_dark(fill, 0.75))
        self.d.polygon(xy, fill=fill, outline=_dark(fill), width=self.ow)

    def limb(self, a: tuple[float, float], b: tuple[float, float], width: float, fill: RGB) -> None:
        w = round(width * self.ppu)
        self.d.line([self.p(*a), self.p(*b)], fill=_dark(fill), width=w + 2 * self.ow)
        self.d.line([self.p(*a), self.p(*b)], fill=fill, width=w)
        for x, y in (a, b):
            self.ell(x, y, width / 2, width / 2, fill, shade=False, outline=False)

    def arc(self, cx: float, cy: float, rx: float, ry: float, start: float, end: float,
            colour: RGB, width: float = 0.06) -> None:  # fmt: skip
        x0, y0 = self.p(cx - rx, cy - ry)
        x1, y1 = self.p(cx + rx, cy + ry)
        self.d.arc((x0, y0, x1, y1), start, end, fill=colour, width=max(1, round(width * self.ppu)))


VIEWS = {"portrait": (-1.5, 2.3), "fullbody": (-1.55, 4.55)}


def render_b(
    c: CharacterB, *, expression: str = "neutral", pose: str = "standing",
    framing: str = "portrait", size: int = 256, variation: int = 0,
) -> Image.Image:  # fmt: skip
    """The character as RGBA (transparent background), ``size`` x ``size``."""
    ss = 2
    side = size * ss
    img = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    top, bottom = VIEWS[framing]
    ppu = side / (bottom - top) * 0.94
    rng = random.Random(variation)
    origin = (side / 2 + rng.uniform(-0.03, 0.03) * side, -top * ppu + side * 0.03)
    pen = _Pen(draw, ppu, origin)
    hr = c.head_ratio
    bw = c.body_width
    tilt = {"sad": 0.08, "shy": 0.06, "thinking": -0.06}.get(expression, 0.0)
    hx, hy = tilt + rng.uniform(-0.04, 0.04), abs(tilt) * 0.5

    seat = 0.9 if pose == "sitting" else 0.0
    if pose == "sitting":
        pen.poly([(-1.3, 3.25), (1.3, 3.25), (1.3, 3.55), (-1.3, 3.55)], (150, 110, 70))
        pen.poly([(-1.1, 3.55), (-0.95, 3.55), (-0.95, 4.4), (-1.1, 4.4)], (120, 86, 54))
        pen.poly([(0.95, 3.55), (1.1, 3.55), (1.1, 4.4), (0.95, 4.4)], (120, 86, 54))
    # Back hair
    _back_hair(pen, c, hx, hy, hr)
    # Legs
    leg_colour = c.skin if c.outfit_kind == "dress" else c.bottom
    if pose == "walking":
        legs = [((-0.25, 2.5), (-0.6, 4.0)), ((0.25, 2.5), (0.55, 4.0))]
    elif pose == "sitting":
        legs = [((-0.3, 2.5 + seat * 0.6), (-0.35, 3.3)), ((0.3, 2.5 + seat * 0.6), (0.35, 3.3))]
        legs = [((-0.3, 3.2), (-0.3, 4.0)), ((0.3, 3.2), (0.3, 4.0))]
    else:
        legs = [((-0.28, 2.5), (-0.3, 4.0)), ((0.28, 2.5), (0.3, 4.0))]
    for a, b in legs:
        pen.limb(a, b, 0.36, leg_colour)
        pen.ell(b[0] + 0.08, b[1] + 0.1, 0.3, 0.17, c.shoes)
    # Torso
    w = 0.72 * bw
    if c.outfit_kind == "dress":
        pen.poly([(-w * 0.8, 0.95), (w * 0.8, 0.95), (w * 1.5, 3.1), (-w * 1.5, 3.1)], c.outfit)
        pen.poly([(-w * 1.5, 2.85), (w * 1.5, 2.85), (w * 1.5, 3.1), (-w * 1.5, 3.1)], c.accent)
    else:
        pen.poly([(-w * 1.1, 2.2), (w * 1.1, 2.2), (w * 1.15, 2.75), (-w * 1.15, 2.75)], c.bottom)
        pen.poly([(-w, 0.95), (w, 0.95), (w * 1.1, 2.35), (-w * 1.1, 2.35)], c.outfit)
        if c.outfit_kind == "coat":
            pen.poly([(-0.08, 0.95), (0.08, 0.95), (0.08, 2.35), (-0.08, 2.35)], c.accent, False)
        elif c.outfit_kind == "overalls":
            pen.poly([(-w * 0.6, 1.5), (w * 0.6, 1.5), (w * 0.7, 2.35), (-w * 0.7, 2.35)], c.accent)
        else:
            pen.poly([(-w * 1.1, 2.0), (w * 1.1, 2.0), (w * 1.1, 2.2), (-w * 1.1, 2.2)], c.accent)
    pen.poly([(-0.3, 0.95), (0.3, 0.95), (0.0, 1.35)], c.accent)  # collar
    # Arms
    sx = w + 0.1
    swing = rng.uniform(-0.1, 0.1)
    left = ((-sx, 1.15), (-sx - 0.35, 2.2 + swing))
    right = ((sx, 1.15), (sx + 0.35, 2.2 - swing))
    if pose == "waving":
        right = ((sx, 1.15), (sx + 0.7, -0.2))
    if expression == "thinking":
        left = ((-sx, 1.15), (-0.25, 0.75))
    for a, b in (left, right):
        pen.limb(a, b, 0.3, c.outfit)
        pen.ell(b[0], b[1], 0.17, 0.17, c.skin, shade=False)
    # Head
    pen.ell(hx, hy, 1.0 * hr, 0.93 * hr, c.skin)
    _face(pen, c, expression, hx, hy, hr)
    _front_hair(pen, c, hx, hy, hr)
    _accessory(pen, c, hx, hy, hr)
    return img.resize((size, size), Image.Resampling.LANCZOS)


def _back_hair(pen: _Pen, c: CharacterB, hx: float, hy: float, hr: float) -> None:
    s = c.hair_style
    if s == "long":
        pen.poly([(hx - 1.15 * hr, hy), (hx + 1.15 * hr, hy), (hx + 1.3 * hr, hy + 2.2),
                  (hx - 1.3 * hr, hy + 2.2)], c.hair)  # fmt: skip
    elif s == "twintails":
        for sgn in (-1, 1):
            pen.ell(hx + sgn * 1.35 * hr, hy + 0.9, 0.38, 1.1, c.hair)
    elif s == "ponytail":
        pen.ell(hx + 1.0 * hr, hy + 0.5, 0.42, 1.0, c.hair)
    elif s == "buns":
        for sgn in (-1, 1):
            pen.ell(hx + sgn * 0.8 * hr, hy - 0.85 * hr, 0.38, 0.38, c.hair)
    elif s == "spiky":
        pts = []
        for i in range(15):
            a = math.pi * (0.95 + 1.1 * i / 14)
            r = (1.35 if i % 2 else 1.05) * hr
            pts.append((hx + r * math.cos(a), hy + 0.1 + r * math.sin(a)))
        pen.poly(pts, c.hair)
    pen.ell(hx, hy + 0.05, 1.12 * hr, 1.05 * hr, c.hair)  # the hair mass behind the head


def _front_hair(pen: _Pen, c: CharacterB, hx: float, hy: float, hr: float) -> None:
    # A cap over the top of the head, then a fringe of rounded locks.
    x0, y0 = pen.p(hx - 1.08 * hr, hy - 1.02 * hr)
    x1, y1 = pen.p(hx + 1.08 * hr, hy + 0.9 * hr)
    pen.d.chord((x0, y0, x1, y1), 180, 360, fill=c.hair, outline=_dark(c.hair), width=pen.ow)
    n = 5
    for i in range(n):
        x = hx - 0.8 * hr + 1.6 * hr * i / (n - 1)
        pen.ell(x, hy - 0.4 * hr, 0.24 * hr, 0.26 * hr, c.hair, shade=False)


def _face(pen: _Pen, c: CharacterB, expression: str, hx: float, hy: float, hr: float) -> None:
    ey = hy + 0.22 * hr
    mouth = (150, 60, 70)
    for sgn in (-1, 1):
        ex = hx + sgn * 0.4 * hr
        if expression == "happy":
            pen.arc(ex, ey + 0.05, 0.16, 0.12, 200, 340, _dark(c.eyes, 0.5), 0.07)
            continue
        ry = 0.3 if expression == "surprised" else 0.24
        pen.ell(ex, ey, 0.17 * hr, ry * hr, (250, 250, 250), shade=False)
        pen.ell(ex, ey + 0.03, 0.13 * hr, (ry - 0.05) * hr, c.eyes, shade=False)
        pen.ell(ex - 0.04, ey - 0.07, 0.05 * hr, 0.06 * hr, (255, 255, 255), shade=False,
                outline=False)  # fmt: skip
        if expression == "angry":
            a, b = pen.p(ex - sgn * 0.2, ey - 0.38), pen.p(ex + sgn * 0.15, ey - 0.28)
            pen.d.line([a, b], fill=_dark(c.hair, 0.4), width=max(2, round(pen.ppu * 0.07)))
        if expression == "sad":
            a, b = pen.p(ex - sgn * 0.2, ey - 0.28), pen.p(ex + sgn * 0.15, ey - 0.38)
            pen.d.line([a, b], fill=_dark(c.hair, 0.4), width=max(2, round(pen.ppu * 0.07)))
    if expression in ("shy", "flustered"):
        for sgn in (-1, 1):
            pen.ell(hx + sgn * 0.62 * hr, hy + 0.5 * hr, 0.16, 0.08, (240, 130, 140), False, False)
    my = hy + 0.62 * hr
    if expression == "happy":
        pen.d.chord((*pen.p(hx - 0.2, my - 0.12), *pen.p(hx + 0.2, my + 0.15)), 0, 180, fill=mouth)
    elif expression == "sad":
        pen.arc(hx, my + 0.1, 0.15, 0.08, 200, 340, mouth)
    elif expression == "surprised":
        pen.ell(hx, my, 0.09, 0.12, mouth, shade=False)
    elif expression == "angry":
        pen.d.line([pen.p(hx - 0.15, my + 0.02), pen.p(hx + 0.15, my - 0.02)], fill=mouth,
                   width=max(2, round(pen.ppu * 0.06)))  # fmt: skip
    else:
        pen.arc(hx, my - 0.05, 0.12, 0.07, 20, 160, mouth)


def _accessory(pen: _Pen, c: CharacterB, hx: float, hy: float, hr: float) -> None:
    a = c.accessory
    if a == "hat":
        pen.ell(hx, hy - 0.85 * hr, 1.25 * hr, 0.22 * hr, c.accessory_rgb)
        pen.poly([(hx - 0.7 * hr, hy - 0.85 * hr), (hx + 0.7 * hr, hy - 0.85 * hr),
                  (hx + 0.5 * hr, hy - 1.45 * hr), (hx - 0.5 * hr, hy - 1.45 * hr)],
                 c.accessory_rgb)  # fmt: skip
    elif a == "bow":
        bx, by = hx + 0.65 * hr, hy - 0.8 * hr
        pen.poly([(bx, by), (bx - 0.35, by - 0.22), (bx - 0.35, by + 0.22)], c.accessory_rgb)
        pen.poly([(bx, by), (bx + 0.35, by - 0.22), (bx + 0.35, by + 0.22)], c.accessory_rgb)
    elif a == "scarf":
        pen.ell(hx * 0.3, 1.0, 0.75 * c.body_width, 0.18, c.accessory_rgb)
    elif a == "headphones":
        pen.arc(hx, hy - 0.1, 1.12 * hr, 1.0 * hr, 180, 360, c.accessory_rgb, 0.12)
        for sgn in (-1, 1):
            pen.ell(hx + sgn * 1.05 * hr, hy + 0.1, 0.18, 0.28, c.accessory_rgb)
