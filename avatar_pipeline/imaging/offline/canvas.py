"""A thin drawing surface over Pillow's ``ImageDraw`` in character units.

The character is modelled in *units*: the head is a circle of radius ~1 centred on (0, 0), y
grows downwards, the feet of a standing figure are at y ~ 8.4. A :class:`Canvas` maps units to
pixels (scale + offset), applies the palette (pastel/warm/cool) to every colour, and draws each
shape with the style's outline (dark ink for anime/pixel, a darker shade of the fill otherwise).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import ImageDraw

from avatar_pipeline.imaging.offline.character import RGB, StyleTraits, mix, scale

Point = tuple[float, float]

OUTLINE_UNITS = {
    "plain": 0.032,
    "anime": 0.048,
    "watercolor": 0.018,
    "pixel": 0.05,
    "realistic": 0.016,
}
INK: RGB = (42, 32, 46)


def tone(colour: RGB, palette: str) -> RGB:
    """Apply the style's palette to one colour."""
    r, g, b = colour
    if palette == "pastel":
        grey = round((r + g + b) / 3)
        return mix(mix(colour, (grey, grey, grey), 0.25), (255, 250, 252), 0.3)
    if palette == "warm":
        return (min(255, round(r * 1.05 + 12)), min(255, round(g * 1.0 + 4)), round(b * 0.84))
    if palette == "cool":
        return (round(r * 0.86), min(255, round(g * 0.97 + 4)), min(255, round(b * 1.06 + 14)))
    return colour


@dataclass
class Canvas:
    """Units -> pixels, with the style's palette and outline applied to every shape."""

    draw: ImageDraw.ImageDraw
    px_per_unit: float
    origin: Point  # pixel position of unit (0, 0)
    style: StyleTraits

    def sub(self, factor: float, pivot: Point = (0.0, 0.0), offset: Point = (0.0, 0.0)) -> Canvas:
        """A canvas whose units are scaled by ``factor`` about ``pivot`` and then shifted."""
        ox, oy = self.p(pivot[0] + offset[0], pivot[1] + offset[1])
        origin = (
            ox - pivot[0] * factor * self.px_per_unit,
            oy - pivot[1] * factor * self.px_per_unit,
        )
        return Canvas(self.draw, self.px_per_unit * factor, origin, self.style)

    # -- coordinates ---------------------------------------------------------------------------
    def p(self, x: float, y: float) -> Point:
        return (self.origin[0] + x * self.px_per_unit, self.origin[1] + y * self.px_per_unit)

    def pts(self, points: Sequence[Point]) -> list[Point]:
        return [self.p(x, y) for x, y in points]

    def w(self, units: float) -> int:
        return max(1, round(units * self.px_per_unit))

    # -- colours -------------------------------------------------------------------------------
    def c(self, colour: RGB) -> RGB:
        return tone(colour, self.style.palette)

    def ink(self, fill: RGB) -> RGB:
        if self.style.medium in ("anime", "pixel"):
            return self.c(INK)
        k = 0.72 if self.style.medium == "watercolor" else 0.55
        return self.c(scale(fill, k))

    @property
    def outline_w(self) -> int:
        return self.w(OUTLINE_UNITS.get(self.style.medium, 0.032))

    def shade(self, fill: RGB, strength: float = 1.0) -> RGB:
        """The shadow colour of ``fill`` for the style's shading (cel: hard, soft: lighter)."""
        if self.style.shading == "flat":
            return fill
        k = 0.8 if self.style.shading == "cel" else 0.88
        return scale(fill, 1 - (1 - k) * strength)

    # -- shapes --------------------------------------------------------------------------------
    def polygon(self, points: Sequence[Point], fill: RGB, outline: bool = True) -> None:
        xy = self.pts(points)
        if outline:
            self.draw.polygon(xy, fill=self.c(fill), outline=self.ink(fill), width=self.outline_w)
        else:
            self.draw.polygon(xy, fill=self.c(fill))

    def ellipse(
        self,
        cx: float,
        cy: float,
        rx: float,
        ry: float,
        fill: RGB | None,
        outline: bool = True,
        outline_colour: RGB | None = None,
        width: int | None = None,
    ) -> None:
        x0, y0 = self.p(cx - rx, cy - ry)
        x1, y1 = self.p(cx + rx, cy + ry)
        ink = None
        if outline:
            ink = self.c(outline_colour) if outline_colour else self.ink(fill or INK)
        self.draw.ellipse(
            (x0, y0, x1, y1),
            fill=self.c(fill) if fill is not None else None,
            outline=ink,
            width=width if width is not None else self.outline_w,
        )

    def line(self, points: Sequence[Point], colour: RGB, width: float, raw: bool = False) -> None:
        """A polyline ``width`` units thick with round joints (``raw``: colour not toned)."""
        px = self.w(width)
        fill = colour if raw else self.c(colour)
        self.draw.line(self.pts(points), fill=fill, width=px, joint="curve")
        if px >= 3:
            r = px / 2
            for x, y in (self.p(*points[0]), self.p(*points[-1])):
                self.draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)

    def limb(self, points: Sequence[Point], width: float, fill: RGB) -> None:
        """An outlined tube (arm, leg, sleeve) through ``points``."""
        self.line(points, self.ink(fill), width + 2 * self.outline_w / self.px_per_unit, raw=True)
        self.line(points, fill, width)

    def arc_points(
        self, cx: float, cy: float, rx: float, ry: float, start: float, end: float, n: int = 16
    ) -> list[Point]:
        """Points along an ellipse from ``start`` to ``end`` degrees (0 = +x, 90 = down)."""
        out = []
        for i in range(n + 1):
            t = math.radians(start + (end - start) * i / n)
            out.append((cx + rx * math.cos(t), cy + ry * math.sin(t)))
        return out
