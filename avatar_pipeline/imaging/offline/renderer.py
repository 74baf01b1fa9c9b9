"""Render a :class:`CharacterIdentity` in a :class:`RenderState` to a Pillow image.

Crisp styles (plain, anime) are drawn with ``ImageDraw`` at up to 2x the output size (at most
1536 px a side) and downscaled with LANCZOS for smooth edges; watercolor (colour bleeding and a
paper grain) and realistic (thinner lines, smaller eyes, a soft blur) are drawn at 1x since
their finish softens edges anyway; pixel art is drawn at 128 px, quantised to 40 colours and
upscaled with NEAREST. A 1024x1024 render takes ~0.05-0.12 s (plus ~0.03-0.1 s PNG encode).
"""

from __future__ import annotations

import random

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter

from avatar_pipeline.imaging.offline.body import (
    SITTING_DROP,
    draw_arm,
    draw_bench,
    draw_floor_shadow,
    draw_legs,
    skeleton,
)
from avatar_pipeline.imaging.offline.canvas import Canvas, tone
from avatar_pipeline.imaging.offline.character import (
    RGB,
    CharacterIdentity,
    RenderState,
    mix,
    scale,
)
from avatar_pipeline.imaging.offline.face import draw_brows_and_marks, draw_features, draw_head
from avatar_pipeline.imaging.offline.hair import (
    draw_back_hair,
    draw_front_hair,
    draw_front_strands,
    draw_glasses,
)
from avatar_pipeline.imaging.offline.outfit import (
    draw_hood,
    draw_lower_garment,
    draw_neck,
    draw_upper_garment,
    sleeve_of,
)

# Unit ranges each framing shows: (top y, bottom y, width needed).
VIEWS = {"portrait": (-1.8, 2.75, 4.6), "fullbody": (-1.95, 9.0, 6.2)}
MAX_INTERNAL_SIDE = 1536  # supersample up to this size; larger outputs are drawn at 1x
PIXEL_ART_SIDE = 128

Box = tuple[int, int, int, int]


def camera(framing: str, width: int, height: int) -> tuple[float, tuple[float, float]]:
    """(pixels per unit, pixel of unit (0, 0)) for ``framing`` on a width x height image."""
    top, bottom, span = VIEWS[framing]
    ppu = min(height / (bottom - top), width / span)
    centre = (top + bottom) / 2
    return ppu, (width / 2, height / 2 - centre * ppu)


def take_camera(state: RenderState, width: int, height: int) -> tuple[float, tuple[float, float]]:
    """The framing's camera, moved a little for each take, as a real model re-frames every
    image it makes: zoom within +-5 %, shift within +-4 % of the width and +-2 % of the height.
    Identity (palette, face, hair) is untouched; a re-take of the same pose is no pixel copy."""
    ppu, (ox, oy) = camera(state.framing, width, height)
    if not state.variation:
        return ppu, (ox, oy)
    rng = random.Random(state.variation * 7919 + 1)
    zoom = rng.uniform(0.95, 1.05)
    cx, cy = width / 2, height / 2
    return ppu * zoom, (
        cx + (ox - cx) * zoom + rng.uniform(-0.04, 0.04) * width,
        cy + (oy - cy) * zoom + rng.uniform(-0.02, 0.02) * height,
    )


def head_scale(ident: CharacterIdentity) -> float:
    return ident.head_scale * (0.86 if ident.style.medium == "realistic" else 1.0)


# Where each expression carries the head (body units): shy and sad droop, surprise lifts it.
EXPRESSION_HEAD_SHIFT = {"happy": (0.0, -0.03), "shy": (0.05, 0.07), "flustered": (-0.04, 0.04),
                         "sad": (0.0, 0.09), "angry": (0.0, 0.03), "surprised": (0.0, -0.07),
                         "thinking": (-0.05, 0.0)}  # fmt: skip


def head_shift(state: RenderState) -> tuple[float, float]:
    """The head's offset from the neck for the expression, plus the take's small variation."""
    dx, dy = EXPRESSION_HEAD_SHIFT.get(state.expression, (0.0, 0.0))
    if state.variation:
        rng = random.Random(state.variation)
        dx, dy = dx + rng.uniform(-0.06, 0.06), dy + rng.uniform(-0.04, 0.04)
    return dx, dy


def arm_swing(state: RenderState) -> float:
    return random.Random(state.variation).uniform(-0.12, 0.12) if state.variation else 0.0


def _canvases(
    ident: CharacterIdentity, state: RenderState, draw: ImageDraw.ImageDraw, w: int, h: int
) -> tuple[Canvas, Canvas, Canvas]:
    ppu, origin = take_camera(state, w, h)
    base = Canvas(draw, ppu, origin, ident.style)
    body = base.sub(1.0, offset=(0.0, SITTING_DROP)) if state.pose == "sitting" else base
    head = body.sub(head_scale(ident), pivot=(0.0, 1.0), offset=head_shift(state))
    return base, body, head


def _background(ident: CharacterIdentity, state: RenderState, w: int, h: int) -> Image.Image:
    bg = tone(ident.background_rgb, ident.style.palette)
    top, bottom = mix(bg, (255, 255, 255), 0.45), scale(bg, 0.97)
    mask = Image.linear_gradient("L").resize((w, h), Image.Resampling.BILINEAR)
    img = Image.composite(Image.new("RGB", (w, h), bottom), Image.new("RGB", (w, h), top), mask)
    draw = ImageDraw.Draw(img)
    light = mix(bg, (255, 255, 255), 0.3)
    pattern = ident.background_pattern
    if pattern == "dots":
        step = max(w, h) / 9
        r = step * 0.14
        for j in range(11):
            for i in range(11):
                x, y = (i + 0.5 * (j % 2)) * step, j * step * 0.9
                draw.ellipse((x - r, y - r, x + r, y + r), fill=light)
    elif pattern == "stripes":
        step = max(w, h) / 7
        for i in range(-8, 9):
            x = i * step
            draw.polygon([(x, 0), (x + step * 0.4, 0), (x + step * 0.4 + h, h), (x + h, h)], light)
    elif pattern == "vignette":
        ring = Image.radial_gradient("L").resize((w, h), Image.Resampling.BILINEAR)
        img = Image.composite(Image.new("RGB", (w, h), scale(bg, 0.9)), img, ring)
    if state.framing == "fullbody":
        ppu, origin = take_camera(state, w, h)
        floor_y = origin[1] + 8.3 * ppu
        ImageDraw.Draw(img).rectangle((0, floor_y, w, h), fill=scale(bg, 0.93))
    return img


def _draw_figure(ident: CharacterIdentity, state: RenderState, img: Image.Image) -> None:
    draw = ImageDraw.Draw(img)
    base, body, head = _canvases(ident, state, draw, img.width, img.height)
    skel = skeleton(
        state.pose, state.expression, ident.body_width, head_shift(state), arm_swing(state)
    )
    full = state.framing == "fullbody"
    if full:
        draw_floor_shadow(base, tone(ident.background_rgb, ident.style.palette), state.pose)
        if state.pose == "sitting":
            draw_bench(body)
    draw_back_hair(head, ident)
    draw_hood(body, ident)
    if full:
        draw_legs(body, ident, skel, state.pose)
    draw_lower_garment(body, ident, state.pose)
    draw_neck(body, ident)
    draw_upper_garment(body, ident)
    sleeve, sleeve_rgb = sleeve_of(ident)
    thinking, waving = state.expression == "thinking", state.pose == "waving"
    if not thinking:
        draw_arm(body, ident, skel.left_arm, sleeve, sleeve_rgb)
    if not waving:
        draw_arm(body, ident, skel.right_arm, sleeve, sleeve_rgb)
    draw_front_strands(head, ident)
    draw_head(head, ident)
    draw_features(head, ident, state.expression, realistic=ident.style.medium == "realistic")
    draw_glasses(head, ident)
    draw_front_hair(head, ident)
    draw_brows_and_marks(head, ident, state.expression)
    if waving:
        draw_arm(body, ident, skel.right_arm, sleeve, sleeve_rgb, hand="open")
    if thinking:
        draw_arm(body, ident, skel.left_arm, sleeve, sleeve_rgb, hand="chin")


def _paper_grain(w: int, h: int) -> Image.Image:
    """A soft, deterministic paper texture (multiplied over watercolor renders)."""
    rng = np.random.default_rng(20240601)
    small = rng.integers(238, 256, size=(max(1, h // 6), max(1, w // 6)), dtype=np.uint8)
    return Image.fromarray(small, "L").resize((w, h), Image.Resampling.BILINEAR)


def render(ident: CharacterIdentity, state: RenderState, width: int, height: int) -> Image.Image:
    """Draw the character; returns an RGB image of exactly ``width`` x ``height``."""
    medium = ident.style.medium
    if medium == "pixel":
        k = PIXEL_ART_SIDE / max(width, height)
        w, h = max(16, round(width * k)), max(16, round(height * k))
    elif medium in ("watercolor", "realistic"):
        w, h = width, height  # their soft finish smooths edges: no supersampling needed
    else:
        ss = max(1.0, min(2.0, MAX_INTERNAL_SIDE / max(width, height)))
        w, h = round(width * ss), round(height * ss)
    img = _background(ident, state, w, h)
    _draw_figure(ident, state, img)
    if medium == "watercolor":
        soft = img.filter(ImageFilter.BoxBlur(max(1, round(w / 250))))
        img = Image.blend(img, soft, 0.5)
        grain = _paper_grain(w, h)
        img = ImageChops.multiply(img, Image.merge("RGB", (grain, grain, grain)))
    elif medium == "realistic":
        img = img.filter(ImageFilter.GaussianBlur(max(0.6, w / 700)))
    if medium == "pixel":
        img = img.quantize(colors=40, dither=Image.Dither.NONE).convert("RGB")
        return img.resize((width, height), Image.Resampling.NEAREST)
    if (w, h) != (width, height):
        img = img.resize((width, height), Image.Resampling.LANCZOS)
    return img


def region_boxes(
    ident: CharacterIdentity, state: RenderState, width: int, height: int
) -> dict[str, Box]:
    """Pixel boxes (x0, y0, x1, y1) of the crown hair, cheek skin, outfit and background, and
    of ``side_hair`` (beside the neck: hair there means shoulder-length or long hair).

    Used by tests and by callers that want to measure identity drift region by region.
    """
    ppu, origin = take_camera(state, width, height)
    dy = SITTING_DROP if state.pose == "sitting" else 0.0
    hs = head_scale(ident)
    bw = ident.body_width
    hx, hy = head_shift(state)

    def body_box(x0: float, y0: float, x1: float, y1: float) -> Box:
        return (
            round(origin[0] + x0 * ppu),
            round(origin[1] + (y0 + dy) * ppu),
            round(origin[0] + x1 * ppu),
            round(origin[1] + (y1 + dy) * ppu),
        )

    def head_box(x0: float, y0: float, x1: float, y1: float) -> Box:
        return body_box(
            x0 * hs + hx, 1.0 + (y0 - 1.0) * hs + hy, x1 * hs + hx, 1.0 + (y1 - 1.0) * hs + hy
        )

    return {
        "hair": head_box(-0.45, -0.85, 0.45, -0.5),
        "face": head_box(0.26, 0.74, 0.44, 0.86),
        "side_hair": head_box(-1.04, 1.5, -0.86, 1.9),  # hair here only when below the jaw
        "outfit": body_box(0.38 * bw, 2.3, 0.6 * bw, 2.6),
        "background": (
            round(width * 0.03),
            round(height * 0.03),
            round(width * 0.1),
            round(height * 0.1),
        ),
    }


def dominant_colour(img: Image.Image, box: Box) -> RGB:
    """The most common colour (after light quantisation) inside ``box``."""
    crop = np.asarray(img.convert("RGB").crop(box), dtype=np.int32).reshape(-1, 3)
    if crop.size == 0:
        raise ValueError(f"empty region {box} in a {img.width}x{img.height} image")
    q = crop // 8
    keys = q[:, 0] * 1024 + q[:, 1] * 32 + q[:, 2]
    values, counts = np.unique(keys, return_counts=True)
    best = values[counts.argmax()]
    members = crop[keys == best]
    r, g, b = (int(v) for v in members.mean(axis=0).round())
    return (r, g, b)
