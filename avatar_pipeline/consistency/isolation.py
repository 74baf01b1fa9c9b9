"""Character isolation: which pixels are the character, and the character's box.

Every identity signal is computed on the character, not the frame. The default
:class:`BorderModelSegmenter` needs no weights: it learns the background from the image
border and removes what the border explains.

1. The border is split into five zones: the top, the upper 80 % of the left and right edges
   and the two bottom corners (the bottom middle is left out: a portrait's shoulders are cut
   there). Border colours (CIELAB) that occur in at least two zones are the background's
   colours: flat fills, both colours of stripes, checks or dots, sky and ground bands,
   anti-aliased pattern edges. A colour found in one zone only (hair cut by the top edge, an
   outfit cut by the bottom) is not background.
2. A smooth quadratic model of the border (per Lab channel) explains gradients and vignettes
   whose centre colour never reaches the border; it is used only when it fits the border well.
3. A pixel is background-like when it is within ``tolerance`` (ΔE76) of a background colour or
   of the smooth model, or when it lies next to such a pixel and its colour is a blend of two
   background colours (the anti-aliased seams of checks, stripes and dots: without them a cell
   the figure overlaps is cut off from the border by its own seams). The background is the
   background-like pixels connected to the border zones.
4. A flat, one-colour region of what is left that fills its bounding rectangle and borders the
   background (a window pane, a picture the figure stands in front of or touches) is scenery and
   is removed, with its frame; a rectangle inside the figure (a chest panel) borders no
   background and stays.
5. The character is the rest: the largest component (and any big one next to it), holes
   filled, specks removed. Scenery shapes that touch the border (hills, a ground band) are
   background; a small detached shape (a sun) is dropped as a separate component. Known limit:
   a hill or bench that does not reach the frame but touches the figure's feet stays.

Work happens on a copy at most ``working_side`` pixels a side (default 128): isolating a
1024 px image takes a few milliseconds. A segmentation model with weights on disk can be
plugged in instead through the :class:`Segmenter` protocol.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
from PIL import Image
from scipy import ndimage

from avatar_pipeline.consistency.colour import rgb_to_lab

NEUTRAL_FILL: tuple[int, int, int] = (128, 128, 128)
WORKING_SIDE = 128
_SIDE_SHARE = 0.3
_FLAT_EDGE_DE = 10.0  # ΔE76 between neighbours that bounds a flat region
_RECTANGLE_MIN = 0.01  # flat rectangles smaller than this share of the frame are kept
_RECTANGLE_FILL = 0.9  # a flat region filling this much of its box is a rectangle
_RECTANGLE_OPEN = 0.25  # ... and scenery when this much of its surroundings is background
Box = tuple[int, int, int, int]

__all__ = [
    "NEUTRAL_FILL",
    "WORKING_SIDE",
    "BorderModelSegmenter",
    "Isolation",
    "Segmenter",
    "isolate",
]


@runtime_checkable
class Segmenter(Protocol):
    """Anything that says which pixels of an RGB image are the character."""

    name: str

    def segment(self, image: Image.Image) -> np.ndarray:
        """A boolean (or 0..1 float) foreground mask with the image's height x width."""


@dataclass(frozen=True)
class Isolation:
    """The character in one image: its mask and box on a working copy of the image.

    ``image`` is the working copy (RGB, at most ``working_side`` a side) and ``mask``/``box``
    are in its pixels; ``scale`` is working pixels per source pixel, so
    :attr:`source_box` gives the box on the original image.
    """

    image: Image.Image
    mask: np.ndarray  # bool, image.height x image.width
    box: Box  # (x0, y0, x1, y1), x1/y1 exclusive, in working pixels
    scale: float
    source_size: tuple[int, int]
    method: str
    notes: tuple[str, ...] = field(default=())

    @property
    def foreground_fraction(self) -> float:
        return float(self.mask.mean())

    @property
    def found(self) -> bool:
        """False when no character could be told from the background (mask is the frame)."""
        return not any(n.startswith("no foreground found") for n in self.notes)

    @property
    def source_box(self) -> Box:
        x0, y0, x1, y1 = self.box
        k = 1.0 / self.scale
        w, h = self.source_size
        return (
            max(0, int(x0 * k)),
            max(0, int(y0 * k)),
            min(w, int(np.ceil(x1 * k))),
            min(h, int(np.ceil(y1 * k))),
        )

    def on_neutral(self, fill: tuple[int, int, int] = NEUTRAL_FILL) -> Image.Image:
        """The working copy with everything but the character replaced by ``fill``."""
        arr = np.asarray(self.image, dtype=np.uint8).copy()
        arr[~self.mask] = fill
        return Image.fromarray(arr, "RGB")

    def crop(
        self,
        size: int = 224,
        *,
        fill: tuple[int, int, int] = NEUTRAL_FILL,
        margin: float = 0.04,
        source: Image.Image | None = None,
    ) -> Image.Image:
        """The aligned character crop: the box scaled to fit a ``size`` square (longer side
        spans ``1 - 2*margin``), centred, on ``fill``. Pass the full-resolution ``source``
        image for a sharper crop (the mask is upsampled to it)."""
        rgb, _ = self.crop_arrays(size, fill=fill, margin=margin, source=source)
        return Image.fromarray(rgb, "RGB")

    def crop_arrays(
        self,
        size: int,
        *,
        fill: tuple[int, int, int] = NEUTRAL_FILL,
        margin: float = 0.04,
        source: Image.Image | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(RGB uint8 array, bool mask) of :meth:`crop`."""
        x0, y0, x1, y1 = self.box
        if source is not None and source.size == self.source_size and self.scale < 1.0:
            sx0, sy0, sx1, sy1 = self.source_box
            region = source.convert("RGB").crop((sx0, sy0, sx1, sy1))
            mask_img = Image.fromarray(self.mask[y0:y1, x0:x1].astype(np.uint8) * 255, "L")
            mask_img = mask_img.resize(region.size, Image.Resampling.BILINEAR)
        else:
            region = self.image.crop((x0, y0, x1, y1))
            mask_img = Image.fromarray(self.mask[y0:y1, x0:x1].astype(np.uint8) * 255, "L")
        w, h = region.size
        inner = max(1, round(size * (1 - 2 * margin)))
        k = inner / max(w, h, 1)
        nw, nh = max(1, round(w * k)), max(1, round(h * k))
        region = region.resize((nw, nh), Image.Resampling.BILINEAR)
        mask_img = mask_img.resize((nw, nh), Image.Resampling.BILINEAR)
        canvas = Image.new("RGB", (size, size), fill)
        full_mask = Image.new("L", (size, size), 0)
        offset = ((size - nw) // 2, (size - nh) // 2)
        canvas.paste(region, offset, mask_img)
        full_mask.paste(mask_img, offset)
        return np.asarray(canvas, dtype=np.uint8), np.asarray(full_mask) >= 128


def _working_copy(image: Image.Image, side: int) -> tuple[Image.Image, float]:
    rgb = image.convert("RGB")
    longest = max(rgb.size)
    if longest <= side:
        return rgb, 1.0
    factor = longest // (side * 2)
    small = rgb.reduce(factor) if factor > 1 else rgb  # fast box reduction first
    k = side / longest
    size = (max(1, round(rgb.width * k)), max(1, round(rgb.height * k)))
    return small.resize(size, Image.Resampling.BILINEAR), size[0] / rgb.width


def _zones(h: int, w: int, band: int) -> list[np.ndarray]:
    """Boolean masks of the five border zones (top, left, right, bottom-left, bottom-right)."""
    zones = []
    upper = int(h * 0.8)
    corner = max(band, int(w * 0.15))
    top = np.zeros((h, w), bool)
    top[:band, :] = True
    left = np.zeros((h, w), bool)
    left[band:upper, :band] = True
    right = np.zeros((h, w), bool)
    right[band:upper, w - band :] = True
    bl = np.zeros((h, w), bool)
    bl[upper:, :band] = True
    bl[h - band :, :corner] = True
    br = np.zeros((h, w), bool)
    br[upper:, w - band :] = True
    br[h - band :, w - corner :] = True
    zones.extend([top, left, right, bl, br])
    return zones


def _min_distance(lab: np.ndarray, colours: np.ndarray, chunk: int = 64) -> np.ndarray:
    """For each pixel of ``lab`` (N x 3), the ΔE76 to the nearest of ``colours`` (K x 3)."""
    best = np.full(lab.shape[0], np.inf)
    for start in range(0, len(colours), chunk):
        c = colours[start : start + chunk]
        d = ((lab[:, None, :] - c[None, :, :]) ** 2).sum(-1).min(axis=1)
        np.minimum(best, d, out=best)
    return np.sqrt(best)


def _seams(lab: np.ndarray, like: np.ndarray, colours: np.ndarray, tolerance: float) -> np.ndarray:
    """Anti-aliased seams between two background colours (the edges of checks, stripes, dots):
    pixels next to the background whose colour is a blend of two background colours. Without
    them a check cell that the figure overlaps is cut off from the border by its own seams."""
    near = ndimage.binary_dilation(like) & ~like
    ys, xs = np.nonzero(near)
    palette = _unique_colours(colours, step=8.0)
    if len(ys) == 0 or len(palette) < 2:
        return np.zeros_like(like)
    pix = lab[ys, xs]
    best = np.full(len(pix), np.inf)
    for i in range(len(palette) - 1):
        a = palette[i]
        d = palette[i + 1 :] - a  # (K, 3) segment directions
        length2 = np.maximum((d**2).sum(-1), 1e-9)
        rel = pix - a  # (N, 3)
        t = np.clip(rel @ d.T / length2, 0.0, 1.0)  # (N, K)
        closest = a + t[..., None] * d[None]  # (N, K, 3)
        dist = np.sqrt(((pix[:, None, :] - closest) ** 2).sum(-1)).min(axis=1)
        np.minimum(best, dist, out=best)
    out = np.zeros_like(like)
    out[ys[best <= tolerance], xs[best <= tolerance]] = True
    return out


def _unique_colours(lab: np.ndarray, step: float = 3.0) -> np.ndarray:
    """One representative per ``step``-sized Lab cell (first seen)."""
    q = np.round(lab / step).astype(np.int64) + 512
    keys = (q[:, 0] * 1024 + q[:, 1]) * 1024 + q[:, 2]
    _, idx = np.unique(keys, return_index=True)
    return lab[np.sort(idx)]


class BorderModelSegmenter:
    """Weight-free foreground mask from a background model learned on the image border."""

    name = "border-model-v1"

    def __init__(
        self,
        tolerance: float = 7.0,
        zone_support: float = 0.02,
        smooth_fit_max: float = 2.5,
    ) -> None:
        self.tolerance = tolerance
        self.zone_support = zone_support
        self.smooth_fit_max = smooth_fit_max

    def background_like(self, lab: np.ndarray) -> tuple[np.ndarray, list[np.ndarray], list[str]]:
        """(background-like pixels, zone masks, notes) for an H x W x 3 Lab image."""
        h, w, _ = lab.shape
        band = max(2, min(h, w) // 40)
        zones = _zones(h, w, band)
        notes: list[str] = []
        zone_colours = [_unique_colours(lab[z]) for z in zones]
        candidates = _unique_colours(np.concatenate(zone_colours))
        tol2 = self.tolerance**2
        support = np.zeros(len(candidates), int)
        strong = np.zeros(len(candidates), bool)
        for zi, z in enumerate(zones):
            pix = lab[z]
            if len(pix) == 0:
                continue
            near = np.zeros(len(candidates), float)
            for start in range(0, len(candidates), 64):
                c = candidates[start : start + 64]
                d = ((pix[:, None, :] - c[None, :, :]) ** 2).sum(-1) <= tol2
                near[start : start + 64] = d.mean(axis=0)
            support += near >= self.zone_support
            if zi in (1, 2):  # a third of a side edge: scenery (a hill), not a cut-off figure
                strong |= near >= _SIDE_SHARE
        colours = candidates[(support >= 2) | strong]
        if len(colours) == 0:
            colours = zone_colours[0]
            notes.append("no colour shared by two border zones: the top edge is the background")
        flat = lab.reshape(-1, 3)
        like = _min_distance(flat, colours) <= self.tolerance

        # Smooth (quadratic) model of the border for gradients and vignettes.
        border = np.zeros((h, w), bool)
        for z in zones:
            border |= z
        ys, xs = np.nonzero(border)
        bl_like = like.reshape(h, w)[ys, xs]
        if bl_like.sum() >= 12:
            ys, xs = ys[bl_like], xs[bl_like]
            yn, xn = ys / h - 0.5, xs / w - 0.5
            design = np.stack([np.ones_like(xn), xn, yn, xn * xn, yn * yn, xn * yn], axis=1)
            target = lab[ys, xs]
            coef, *_ = np.linalg.lstsq(design, target, rcond=None)
            fit = np.sqrt(((design @ coef - target) ** 2).sum(-1))
            if float(np.median(fit)) <= self.smooth_fit_max:
                gy, gx = np.mgrid[0:h, 0:w]
                gyn, gxn = (gy / h - 0.5).ravel(), (gx / w - 0.5).ravel()
                full = np.stack(
                    [np.ones_like(gxn), gxn, gyn, gxn * gxn, gyn * gyn, gxn * gyn], axis=1
                )
                residual = np.sqrt(((full @ coef - flat) ** 2).sum(-1))
                like |= residual <= self.tolerance
                notes.append("smooth background model used")
        like = like.reshape(h, w)
        like |= _seams(lab, like, colours, self.tolerance)
        return like, zones, notes

    def segment(self, image: Image.Image) -> np.ndarray:
        lab = rgb_to_lab(np.asarray(image.convert("RGB"), dtype=np.uint8))
        like, zones, _ = self.background_like(lab)
        return self._foreground(like, zones, lab)

    def _foreground(
        self, like: np.ndarray, zones: list[np.ndarray], lab: np.ndarray | None = None
    ) -> np.ndarray:
        h, w = like.shape
        seeds = np.zeros((h, w), bool)
        for z in zones:
            seeds |= z
        seeds &= like
        labels, _ = ndimage.label(like)
        background_labels = np.unique(labels[seeds])
        background_labels = background_labels[background_labels > 0]
        background = np.isin(labels, background_labels)
        fg = ~background
        if lab is not None:
            fg &= ~_flat_rectangles(fg, lab)
        fg = ndimage.binary_opening(fg, structure=np.ones((3, 3), bool))
        return _main_figure(fg)


def _flat_rectangles(fg: np.ndarray, lab: np.ndarray) -> np.ndarray:
    """Scenery the figure overlaps or touches that is one flat colour filling a rectangle (a
    window pane, a picture, a sign) and borders the background: such regions of ``fg``. A
    rectangle inside the figure (a chest panel) does not border the background and stays."""
    h, w = fg.shape
    diff_x = np.sqrt(((lab[:, 1:] - lab[:, :-1]) ** 2).sum(-1)) > _FLAT_EDGE_DE
    diff_y = np.sqrt(((lab[1:] - lab[:-1]) ** 2).sum(-1)) > _FLAT_EDGE_DE
    edge = np.zeros((h, w), bool)
    edge[:, 1:] |= diff_x
    edge[:, :-1] |= diff_x
    edge[1:] |= diff_y
    edge[:-1] |= diff_y
    labels, count = ndimage.label(fg & ~edge)
    out = np.zeros((h, w), bool)
    if count == 0:
        return out
    areas = np.bincount(labels.ravel(), minlength=count + 1)
    for i, sl in enumerate(ndimage.find_objects(labels), start=1):
        if sl is None or areas[i] < _RECTANGLE_MIN * h * w:
            continue
        rows, cols = sl
        bh, bw = rows.stop - rows.start, cols.stop - cols.start
        if min(bh, bw) < 6 or areas[i] < _RECTANGLE_FILL * bh * bw:
            continue
        region = labels == i
        ring = ndimage.binary_dilation(region, iterations=5) & ~region
        if (ring & ~fg).sum() >= _RECTANGLE_OPEN * ring.sum():
            out |= ndimage.binary_dilation(region, iterations=2) & fg  # with its frame
    return out


def _main_figure(fg: np.ndarray) -> np.ndarray:
    """The largest component, plus big components within a few pixels of it (a detached
    hand or hat); far shapes (a sun, a window) are scenery."""
    labels, count = ndimage.label(fg)
    if count == 0:
        return fg
    areas = np.bincount(labels.ravel())[1:]
    biggest = int(areas.argmax()) + 1
    keep = labels == biggest
    pad = max(2, fg.shape[0] // 40)
    near = ndimage.binary_dilation(keep, iterations=pad)
    for i, area in enumerate(areas, start=1):
        if i != biggest and area >= 0.05 * areas[biggest - 1]:
            part = labels == i
            if (part & near).any():
                keep |= part
    return ndimage.binary_fill_holes(keep)


_DEFAULT_SEGMENTER = BorderModelSegmenter()


def _as_image(image: Image.Image | bytes) -> Image.Image:
    if isinstance(image, bytes | bytearray | memoryview):
        from avatar_pipeline.consistency.embedders.images import decode_rgb

        return decode_rgb(bytes(image))
    return image


def isolate(
    image: Image.Image | bytes,
    *,
    segmenter: Segmenter | None = None,
    working_side: int = WORKING_SIDE,
    min_fraction: float = 0.01,
) -> Isolation:
    """Isolate the character in ``image`` (PIL image or PNG/JPEG/WebP bytes).

    When the segmenter finds almost nothing (under ``min_fraction`` of the frame) the whole
    frame is returned as the "character", with a note (``Isolation.found`` is False), so a
    caller never scores an empty crop.
    """
    source = _as_image(image)
    small, k = _working_copy(source, working_side)
    seg = segmenter or _DEFAULT_SEGMENTER
    raw = np.asarray(seg.segment(small))
    mask = raw >= 0.5 if raw.dtype != bool else raw
    if mask.shape != (small.height, small.width):
        raise ValueError(
            f"segmenter {seg.name} returned a {mask.shape} mask for a "
            f"{small.height}x{small.width} image"
        )
    notes: tuple[str, ...] = ()
    if mask.mean() < min_fraction:
        mask = np.ones_like(mask)
        notes = ("no foreground found: the whole frame is used",)
    ys, xs = np.nonzero(mask)
    box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    return Isolation(
        image=small,
        mask=mask,
        box=box,
        scale=k,
        source_size=source.size,
        method=seg.name,
        notes=notes,
    )


def isolate_bytes(data: bytes, **kwargs: object) -> Isolation:
    """:func:`isolate` for encoded image bytes."""
    return isolate(Image.open(io.BytesIO(data)).convert("RGB"), **kwargs)  # type: ignore[arg-type]
