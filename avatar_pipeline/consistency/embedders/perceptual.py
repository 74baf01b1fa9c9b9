"""A weight-free embedder of the isolated character: its colours, its face, and where they sit.

The image is first reduced to the character (:func:`avatar_pipeline.consistency.isolation.
isolate`): the background never reaches the embedding, so the same character on another
background scores as itself and another character on the anchor's background does not borrow
the anchor's background. The face (:func:`find_face`) is searched in the upper 60 % of the
figure, cut from the full-resolution source at about 160 px, among skin-coloured regions that do
not cross a colour edge (so skin-hued hair, its outline or a shaded cheek is not merged with the
face): the most face-like one is large, solid, near-square and has small non-skin holes (eyes,
mouth); an upright strip (a cardigan's front) is not a face, and on a full body (a figure over
twice as tall as wide) neither is a region low in the search crop or a band cut by its bottom (a
skirt). Only when no warm region has such holes are near-white, faintly warm regions tried too
(a very pale or light-clipped face), and only at or above the warm candidate (not a white shirt).
A *head crop* (top of the figure down to just below the chin, face-width normalised, cut from
the full-resolution source) is compared head-to-head, so a full-body pose and a portrait anchor
describe the same head at the same scale. Blocks, each L2-normalised and scaled by its weight
(the cosine of two embeddings is the weight²-averaged cosine of the blocks):

- ``presence``: a fine, smoothed L x a x b density of the character's *bust* (16 x 20 x 20
  bins, Gaussian of ~8 ΔE), to the power 1/4: which colours are there at all, so the eyes or a
  ribbon count almost as much as the outfit, while a ±15 % lighting change moves mass only to
  neighbouring bins. The bust is the figure down to ``_BUST`` (1.5) face heights below the chin,
  a portrait's framing: a full-body pose and the portrait anchor are compared on the same part
  of the body (legs and shoes, which the anchor does not show, no longer count against the
  pose); without a face, the whole figure;
- ``hair``: the colour histogram of the head above the face box (hair, fringe, hat): still
  there when the frame cuts off the top of the head; without a face, the top 12 % of the figure;
- ``chroma``: an a x b histogram of the character's saturated pixels (lightness-free);
- ``head_hair``: the colours of the head crop outside the face box (hair, hat, ears);
- ``eye_chroma``: an a x b histogram of the vivid, non-skin pixels of the face's eye band;
- ``skin_tone`` and ``eye_colour``: *kernel* blocks. The face's median skin chromaticity
  (r, g = R/(R+G+B), G/(R+G+B): unchanged by a global brightness change) and the eyes' colour
  are embedded with 1024 random Fourier features, so their block cosine is a Gaussian of the
  chromaticity distance (sigma 0.016 for skin: the same character's full-body poses measure
  their skin within 0.011 of the portrait's at the median, other characters 0.035; 0.03 for
  eyes): near 1 for the same tone, near 0 for another one, however small the eyes. The eyes'
  colour is the dominant vivid chromaticity (hair and skin colours excluded) in the eye rows
  of the face box, found separately in its left and right halves: it is measured only when
  the two agree (eyes come in pairs; blush, a tear or a hand do not). A face or eyes not
  found (closed eyes) give an "unknown" vector whose cosine with any colour is ``_UNKNOWN``
  (0.6): unknown costs less than a mismatch (0.36).

On bench/eval_set (bench/bench_gate.py) this version (``character-lab-bust-v5``) has ROC AUC 0.994
over all pairs and 0.990 against hard negatives, FAR 2.5 % and FRR 4.2 % at 0.858 (v4: FRR 7.5 %,
FAR 1.9 %; the bust, the skin sigma, 4x the random features and a minimum face size are what
changed); a weight-free colour scorer stays short of CLIP on full-body poses where the eyes are a
few pixels or closed (8 % of them fail at the shipped mark). No text tower: expression adherence
cannot be scored with it. Block weights are v3's (chosen on the calibration split of
bench/eval_set; re-searching them did worse in leave-one-family-out cross-validation);
thresholds.py has how the mark was chosen and what it is worth on families it did not see.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage

from avatar_pipeline.consistency.colour import rgb_to_lab
from avatar_pipeline.consistency.embedders.images import decode_rgb
from avatar_pipeline.consistency.isolation import Isolation, isolate
from avatar_pipeline.consistency.types import EmbedderInfo

PERCEPTUAL_MODEL = "character-lab-bust-v5"

# Block weights (relative; squared weights are each block's share of the cosine). Chosen for v3 on
# the calib split of bench/eval_set (coordinate search on ROC AUC + hard-negative AUC) and kept for
# v4: a new search on that split lost in leave-one-family-out cross-validation within it.
BLOCK_WEIGHTS: dict[str, float] = {
    "presence": 2.0,
    "hair": 1.0,
    "chroma": 0.25,
    "head_hair": 0.25,
    "eye_chroma": 0.5,
    "skin_tone": 0.75,
    "eye_colour": 0.5,
}

_LAB_BINS = (8, 10, 10)
_FINE_BINS = (16, 20, 20)
_FINE_SMOOTH = 1.2
_LAB_RANGE = ((0.0, 100.0), (-70.0, 80.0), (-70.0, 90.0))
_CHROMA_BINS = (12, 12)
_EYE_BINS = 16
_CHROMA_MIN = 18.0  # Lab chroma above which a pixel counts for the chroma block
_SMOOTH = 0.8  # Gaussian sigma in bins
_HAIR_BAND = 0.12
_BUST = 1.5  # presence: the figure down to this many face heights below the chin
_ABOVE = 0.1  # the hair block: the head above this share of the face box's height
_FACE_SEARCH = 0.6  # the face is looked for in this upper part of the figure
_EDGE_DE = 10.0  # ΔE76 between neighbours that counts as a colour edge
_FACE_SIDE = 160  # the face is searched on a crop of about this many pixels
_FACE_ELONGATION = 2.5  # a face region is at most this much taller than wide
_FACE_MIN = 0.04  # a face is at least this share of the figure's height (a cheek, a neck are not)
_WORKING_SIDE = 128
_HEAD_FACE_WIDTH = 40  # the face's width in pixels on the head crop
_KERNEL_DIM = 1024  # random Fourier features: kernel error about 1/sqrt(dim)
_UNKNOWN = 0.6  # block cosine between an unknown (not found) and any known colour
_SKIN_SIGMA = 0.016
_EYE_SIGMA = 0.03
_EYE_ROWS = (0.15, 0.62)  # the eyes' rows, as shares of the face box's height
_EYE_PAIR = 0.05  # left and right eye colours further apart than this: not measured
_rng = np.random.default_rng(20261203)
_RFF_W = _rng.normal(size=(_KERNEL_DIM, 2))
_RFF_B = _rng.uniform(0.0, 2.0 * np.pi, _KERNEL_DIM)
Box = tuple[int, int, int, int]


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def _lab_hist(
    lab: np.ndarray,
    power: float,
    bins: tuple[int, int, int] = _LAB_BINS,
    smooth: float = _SMOOTH,
) -> np.ndarray:
    if len(lab) == 0:
        return np.zeros(int(np.prod(bins)))
    hist, _ = np.histogramdd(lab, bins=bins, range=_LAB_RANGE)
    hist = ndimage.gaussian_filter(hist, smooth, mode="constant")
    hist = hist.ravel() / max(float(hist.sum()), 1e-9)
    return hist**power


def _ab_hist(lab: np.ndarray, bins: tuple[int, int], smooth: float) -> np.ndarray:
    if len(lab) == 0:
        return np.zeros(int(np.prod(bins)))
    hist, _, _ = np.histogram2d(
        lab[:, 1], lab[:, 2], bins=bins, range=(_LAB_RANGE[1], _LAB_RANGE[2])
    )
    hist = ndimage.gaussian_filter(hist, smooth, mode="constant")
    return (hist.ravel() / max(float(hist.sum()), 1e-9)) ** 0.5


def _chroma_hist(lab: np.ndarray) -> np.ndarray:
    chroma = np.hypot(lab[:, 1], lab[:, 2])
    return _ab_hist(lab[chroma >= _CHROMA_MIN], _CHROMA_BINS, _SMOOTH)


def _kernel(value: np.ndarray | None, sigma: float) -> np.ndarray:
    """A unit vector whose dot product with another is about exp(-d²/2 sigma²) scaled into
    [_UNKNOWN², 1]; ``None`` (not found) gives a vector at cosine ``_UNKNOWN`` to every colour."""
    out = np.zeros(_KERNEL_DIM + 1)
    if value is None:
        out[0] = 1.0
        return out
    features = np.cos(_RFF_W @ (np.asarray(value, dtype=float) / sigma) + _RFF_B)
    out[0] = _UNKNOWN
    out[1:] = np.sqrt(1.0 - _UNKNOWN**2) * _unit(features)
    return out


def _skin_like(lab: np.ndarray, pale: bool = False) -> np.ndarray:
    """Warm, moderately saturated colours (and, with ``pale``, near-white ones too)."""
    hue = np.degrees(np.arctan2(lab[..., 2], lab[..., 1])) % 360
    chroma = np.hypot(lab[..., 1], lab[..., 2])
    warm = (lab[..., 0] > 22) & (hue > 15) & (hue < 105) & (chroma > 6) & (chroma < 55)
    if not pale:
        return warm
    # a very light face (or one the lighting clipped): near-white but faintly warm, not the
    # neutral or bluish white of white hair or a shirt
    return warm | ((lab[..., 0] > 80) & (chroma <= 6) & (chroma >= 1.5) & (hue > 15) & (hue < 135))


def _skin_regions(
    lab_img: np.ndarray, mask: np.ndarray, pale: bool = False
) -> tuple[np.ndarray, int]:
    """Connected regions of skin-like colour that do not cross a colour edge: a pixel whose
    colour differs from a 4-neighbour by more than ``_EDGE_DE`` is an edge (outlines,
    anti-aliased borders), so a face is not merged with skin-hued hair next to it."""
    diff_x = np.sqrt(((lab_img[:, 1:] - lab_img[:, :-1]) ** 2).sum(-1)) > _EDGE_DE
    diff_y = np.sqrt(((lab_img[1:] - lab_img[:-1]) ** 2).sum(-1)) > _EDGE_DE
    edge = np.zeros(mask.shape, bool)
    edge[:, 1:] |= diff_x
    edge[:, :-1] |= diff_x
    edge[1:] |= diff_y
    edge[:-1] |= diff_y
    labels, count = ndimage.label(_skin_like(lab_img, pale) & mask & ~edge)
    return labels, count


def _best_face(
    labels: np.ndarray, count: int, tall: bool = False, min_side: float = 0.0
) -> tuple[Box, int] | None:
    """(box, number of eye/mouth-like holes) of the most face-like region: large, solid, with
    small holes (eyes, mouth), near-square."""
    if count == 0:
        return None
    areas = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    objects = ndimage.find_objects(labels)
    best, best_score, best_holes = 0, -1.0, 0
    for i, sl in enumerate(objects, start=1):
        area = float(areas[i - 1])
        if sl is None or area < 0.15 * float(areas.max()) or area < 6:
            continue
        rows, cols = sl
        if min(rows.stop - rows.start, cols.stop - cols.start) < min_side:
            continue  # far too small for this figure's face: a cheek, a neck, a hand
        if tall and (
            rows.start + rows.stop > 1.4 * labels.shape[0]  # centre low: the torso
            or (
                rows.stop >= labels.shape[0]
                and cols.stop - cols.start > 2 * (rows.stop - rows.start)
            )  # a band cut by the search crop's bottom (a skirt)
        ):
            continue  # a full body's face is in the top part of the figure
        blob = labels[sl] == i
        # holes small next to the region (eyes, mouth), not a face framed by this region
        hole_labels, n = ndimage.label(ndimage.binary_fill_holes(blob) & ~blob)
        sizes = np.bincount(hole_labels.ravel(), minlength=n + 1)[1:]
        small = sizes[sizes <= 0.1 * area]
        holes, n_holes = float(small.sum()), len(small)
        h, w = blob.shape
        if h > _FACE_ELONGATION * w:  # an upright strip (a cardigan's front): not a face
            continue
        solidity = area / float(h * w)  # a face is a solid oval; an outline ring is not
        score = (area + 6.0 * holes) * (0.5 + min(h, w) / max(h, w)) * (1 + min(n_holes, 3))
        score *= solidity
        if score > best_score:
            best, best_score, best_holes = i, score, n_holes
    if best == 0:
        return None
    rows, cols = objects[best - 1]
    return (cols.start, rows.start, cols.stop, rows.stop), best_holes


def _centre_y(box: Box) -> float:
    return (box[1] + box[3]) / 2


def find_face(
    iso: Isolation, source: Image.Image | None = None
) -> tuple[tuple[float, float, float, float], bool] | None:
    """(face box in working pixels, pale) of an isolated character, or None.

    The upper ``_FACE_SEARCH`` of the figure is cut from ``source`` (the full-resolution
    original, when given) at about ``_FACE_SIDE`` pixels on its longer side, so the face of a
    full-body figure is searched at several times the working resolution; the face is the
    skin-coloured region (bounded by colour edges) that looks most like a face. When no warm
    skin region has eye-like holes, near-white regions are tried too (a pale face; ``pale``
    is then True) — only then, so a white shirt or white hair is not taken for a face."""
    x0, y0, x1, y1 = iso.box
    ys1 = y0 + max(1, int(np.ceil(_FACE_SEARCH * (y1 - y0))))
    use_source = source is not None and source.size == iso.source_size and iso.scale < 1.0
    k = 1.0 / iso.scale if use_source else 1.0
    crop = (int(x0 * k), int(y0 * k), max(int(x0 * k) + 1, int(np.ceil(x1 * k))),
            max(int(y0 * k) + 1, int(np.ceil(ys1 * k))))  # fmt: skip
    image = source.convert("RGB") if use_source and source is not None else iso.image
    region = image.crop(crop)
    s = min(_FACE_SIDE / max(region.size), 4.0)
    size = (max(1, round(region.width * s)), max(1, round(region.height * s)))
    factor = int(1 / s) // 2 if s < 0.5 else 1
    region = (region.reduce(factor) if factor > 1 else region).resize(
        size, Image.Resampling.BILINEAR
    )
    mask_img = Image.fromarray(iso.mask[y0:ys1, x0:x1].astype(np.uint8) * 255, "L")
    mask = np.asarray(mask_img.resize(size, Image.Resampling.BILINEAR)) >= 128
    lab = rgb_to_lab(np.asarray(region, dtype=np.uint8))
    tall = (y1 - y0) > 2 * (x1 - x0)  # a full body: its face is far above the crop's bottom
    min_side = _FACE_MIN * (y1 - y0) * size[1] / max(1, ys1 - y0)
    found, pale = _best_face(*_skin_regions(lab, mask), tall, min_side), False
    if found is None or found[1] == 0:
        found_pale = _best_face(*_skin_regions(lab, mask, pale=True), tall, min_side)
        # a pale candidate replaces a warm one only at or above it (a white shirt is lower)
        if (
            found_pale is not None
            and found_pale[1] >= 2
            and (found is None or _centre_y(found_pale[0]) <= _centre_y(found[0]))
        ):
            found, pale = found_pale, True
    if found is None:
        return None
    fx0, fy0, fx1, fy1 = found[0]
    sx = (x1 - x0) / size[0]
    sy = (ys1 - y0) / size[1]
    return (x0 + fx0 * sx, y0 + fy0 * sy, x0 + fx1 * sx, y0 + fy1 * sy), pale


def _head_crop(
    iso: Isolation, face: tuple[float, float, float, float], source: Image.Image | None
) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float, float]]:
    """(RGB, mask, face box) of the head: the figure's top down to 0.35 face heights below the
    chin, 1.6 face widths either side of the face centre, scaled so the face is
    ``_HEAD_FACE_WIDTH`` wide; cut from ``source`` when it is the isolated image's original."""
    fx0, fy0, fx1, fy1 = face
    fw, fh = fx1 - fx0, fy1 - fy0
    cx = (fx0 + fx1) / 2
    x0, y0, x1, y1 = iso.box
    hx0, hx1 = max(x0, cx - 1.6 * fw), min(x1, cx + 1.6 * fw)
    hy0, hy1 = y0, min(y1, fy1 + 0.35 * fh)
    use_source = source is not None and source.size == iso.source_size and iso.scale < 1.0
    k = 1.0 / iso.scale if use_source else 1.0
    image = source.convert("RGB") if use_source and source is not None else iso.image
    crop_box = (int(hx0 * k), int(hy0 * k), max(int(hx0 * k) + 1, int(np.ceil(hx1 * k))),
                max(int(hy0 * k) + 1, int(np.ceil(hy1 * k))))  # fmt: skip
    region = image.crop(crop_box)
    mask_img = Image.fromarray(iso.mask.astype(np.uint8) * 255, "L")
    if use_source:
        mask_img = mask_img.resize(image.size, Image.Resampling.BILINEAR)
    mask_img = mask_img.crop(crop_box)
    s = _HEAD_FACE_WIDTH / max(1e-6, fw * k)
    size = (max(1, round(region.width * s)), max(1, round(region.height * s)))
    region = region.resize(size, Image.Resampling.BILINEAR)
    mask_img = mask_img.resize(size, Image.Resampling.BILINEAR)
    sx = size[0] / max(1e-6, hx1 - hx0)
    sy = size[1] / max(1e-6, hy1 - hy0)
    rel = ((fx0 - hx0) * sx, (fy0 - hy0) * sy, (fx1 - hx0) * sx, (fy1 - hy0) * sy)
    return np.asarray(region, dtype=np.uint8), np.asarray(mask_img) >= 128, rel


def _mode_chromaticity(chrom: np.ndarray) -> np.ndarray | None:
    if len(chrom) < 3:
        return None
    hist, xe, ye = np.histogram2d(chrom[:, 0], chrom[:, 1], bins=20, range=((0, 1), (0, 1)))
    hist = ndimage.gaussian_filter(hist, 0.7)
    i, j = np.unravel_index(int(hist.argmax()), hist.shape)
    centre = np.array([(xe[i] + xe[i + 1]) / 2, (ye[j] + ye[j + 1]) / 2])
    near = np.linalg.norm(chrom - centre, axis=1) < 0.06
    return np.median(chrom[near], axis=0) if near.any() else None


def _head_features(
    iso: Isolation, source: Image.Image | None, fallback_hair: np.ndarray
) -> tuple[dict[str, np.ndarray], float | None]:
    """The head's blocks (hair above the face, head_hair, eye_chroma, skin_tone, eye_colour)
    and the bust's lower edge (working pixels: ``_BUST`` face heights below the chin);
    ``fallback_hair`` (the figure's top band), "unknown" face blocks and no bust edge when no
    face is found."""
    empty = {
        "hair": fallback_hair,
        "head_hair": np.zeros(int(np.prod(_LAB_BINS))),
        "eye_chroma": np.zeros(_EYE_BINS * _EYE_BINS),
        "skin_tone": _kernel(None, _SKIN_SIGMA),
        "eye_colour": _kernel(None, _EYE_SIGMA),
    }
    found = find_face(iso, source)
    if found is None:
        return empty, None
    face, pale = found
    bust_end = face[3] + _BUST * (face[3] - face[1])
    rgb, mask, (fx0, fy0, fx1, fy1) = _head_crop(iso, face, source)
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        return empty, bust_end
    lab_head = rgb_to_lab(rgb)
    lab = lab_head[ys, xs]
    in_box = np.zeros_like(mask)
    in_box[int(fy0) : int(np.ceil(fy1)), int(fx0) : int(np.ceil(fx1))] = True
    labels, count = _skin_regions(lab_head, mask, pale)
    if count:
        overlap = np.bincount(labels[in_box].ravel(), minlength=count + 1)
        overlap[0] = 0
        face_blob = (
            ndimage.binary_dilation(labels == int(overlap.argmax())) & mask
            if overlap.max() > 0
            else in_box & mask
        )
    else:
        face_blob = np.zeros_like(mask)
    is_face = face_blob[ys, xs]
    inside = in_box[ys, xs]
    eye_band = inside & (ys >= fy0 + 0.25 * (fy1 - fy0)) & (ys < fy0 + 0.8 * (fy1 - fy0))
    hair = ~inside & (ys < fy1)
    # everything above the face box's top (hair, fringe, hat): still there when the frame cuts
    # off the top of the head, unlike the top band of the figure
    above = ys < fy0 + _ABOVE * (fy1 - fy0)
    eye_lab = lab[eye_band & ~is_face & (lab[:, 0] > 20)]
    vivid = eye_lab[np.hypot(eye_lab[:, 1], eye_lab[:, 2]) >= 12]

    rgbf = rgb[ys, xs].astype(np.float64)
    chrom = (rgbf / np.maximum(rgbf.sum(axis=1, keepdims=True), 1.0))[:, :2]
    skin = np.median(chrom[is_face], axis=0) if is_face.sum() >= 4 else None
    hair_tone = np.median(chrom[hair], axis=0) if hair.sum() >= 4 else None
    saturation = rgbf.max(axis=1) - rgbf.min(axis=1)
    eye_rows = (ys >= fy0 + _EYE_ROWS[0] * (fy1 - fy0)) & (ys < fy0 + _EYE_ROWS[1] * (fy1 - fy0))
    candidates = inside & eye_rows & ~is_face & (saturation > 40)
    for tone in (hair_tone, skin):
        if tone is not None:
            candidates &= np.linalg.norm(chrom - tone, axis=1) > 0.03
    # the eyes come in pairs: a colour seen in the left and the right half of the face alike
    left = candidates & (xs < (fx0 + fx1) / 2)
    right = candidates & (xs >= (fx0 + fx1) / 2)
    eye_left, eye_right = _mode_chromaticity(chrom[left]), _mode_chromaticity(chrom[right])
    eye = None
    if (
        eye_left is not None
        and eye_right is not None
        and np.linalg.norm(eye_left - eye_right) < _EYE_PAIR
    ):
        eye = (eye_left + eye_right) / 2
    return {
        "head_hair": _lab_hist(lab[hair], 0.5),
        "eye_chroma": _ab_hist(vivid, (_EYE_BINS, _EYE_BINS), 0.7),
        "skin_tone": _kernel(skin, _SKIN_SIGMA),
        "eye_colour": _kernel(eye, _EYE_SIGMA),
        "hair": _lab_hist(lab[above], 0.5) if above.sum() >= 8 else fallback_hair,
    }, bust_end


def character_features(iso: Isolation, source: Image.Image | None = None) -> dict[str, np.ndarray]:
    """The embedder's blocks (before weighting) for an isolated character; ``source`` is the
    full-resolution image the isolation was made from (sharper face and eyes), if at hand."""
    lab_img = rgb_to_lab(np.asarray(iso.image, dtype=np.uint8))
    ys, xs = np.nonzero(iso.mask)
    lab = lab_img[ys, xs]
    _, y0, _, y1 = iso.box
    rel = (ys - y0) / max(1, y1 - y0)
    head, bust_end = _head_features(iso, source, _lab_hist(lab[rel < _HAIR_BAND], 0.5))
    # the bust: a portrait's framing, whatever the image's framing (whole figure without a face)
    bust = lab[ys < bust_end] if bust_end is not None else lab
    return {
        "presence": _lab_hist(bust, 0.25, _FINE_BINS, _FINE_SMOOTH),
        "chroma": _chroma_hist(lab),
        **head,
    }


class PerceptualEmbedder:
    """Embeds the isolated character (weight-free); no text tower."""

    info = EmbedderInfo("perceptual", PERCEPTUAL_MODEL, "none")
    cache_key = f"perceptual|{PERCEPTUAL_MODEL}|{sorted(BLOCK_WEIGHTS.items())}"

    @property
    def has_text_tower(self) -> bool:
        return False

    def embed_isolation(self, iso: Isolation, source: Image.Image | None = None) -> np.ndarray:
        blocks = character_features(iso, source)
        vector = np.concatenate([BLOCK_WEIGHTS[k] * _unit(blocks[k]) for k in BLOCK_WEIGHTS])
        return _unit(vector).astype(np.float32)

    def embed_one(self, image: object) -> np.ndarray:
        source = decode_rgb(bytes(image)) if isinstance(image, bytes | bytearray) else image
        iso = isolate(source, working_side=_WORKING_SIDE)  # type: ignore[arg-type]
        return self.embed_isolation(iso, source if isinstance(source, Image.Image) else None)

    def embed_images(self, images: list[bytes]) -> np.ndarray:
        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self.embed_one(decode_rgb(data)) for data in images])

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError(
            "the perceptual embedder has no text tower; check has_text_tower before embed_texts"
        )

    @property
    def dim(self) -> int:
        lab = int(np.prod(_LAB_BINS))
        return (
            int(np.prod(_FINE_BINS))
            + 2 * lab
            + int(np.prod(_CHROMA_BINS))
            + _EYE_BINS * _EYE_BINS
            + 2 * (_KERNEL_DIM + 1)
        )
