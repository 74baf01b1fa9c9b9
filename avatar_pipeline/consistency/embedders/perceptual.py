"""A weight-free embedder of the isolated character: its colours, its face, and where they sit.

The image is first reduced to the character (:func:`avatar_pipeline.consistency.isolation.
isolate`): the background never reaches the embedding, so the same character on another
background scores as itself and another character on the anchor's background does not borrow
the anchor's background. The face is located as the skin-coloured blob in the upper 60 % of the
figure that looks most like a face (holes for eyes and mouth, about as wide as tall), and a
*head crop* (top of the figure down to just below the chin, face-width normalised, cut from the
full-resolution source) is compared head-to-head, so a full-body pose and a portrait anchor
describe the same head at the same scale. Blocks, each L2-normalised and scaled by its weight
(the cosine of two embeddings is the weight²-averaged cosine of the blocks):

- ``presence``: a fine, smoothed L x a x b density of the whole character (16 x 20 x 20 bins,
  Gaussian of ~8 ΔE), to the power 1/4: which colours are there at all, so the eyes or a ribbon
  count almost as much as the outfit, while a ±15 % lighting change moves mass only to
  neighbouring bins;
- ``hair``: the colour histogram of the top 12 % of the figure (hair in every framing);
- ``chroma``: an a x b histogram of the character's saturated pixels (lightness-free);
- ``head_hair``: the colours of the head crop outside the face box (hair, hat, ears);
- ``eye_chroma``: an a x b histogram of the vivid, non-skin pixels of the face's eye band;
- ``skin_tone`` and ``eye_colour``: *kernel* blocks. The face's median skin chromaticity
  (r, g = R/(R+G+B), G/(R+G+B): unchanged by a global brightness change) and the eyes' dominant
  vivid chromaticity (hair and skin colours excluded) are embedded with random Fourier
  features, so their block cosine is a Gaussian of the chromaticity distance (sigma 0.012 for skin,
  0.03 for eyes): near 1 for the same tone, near 0 for another one, however small the eyes. A
  face or eyes not found (closed eyes) give an "unknown" vector whose cosine with any colour is
  ``_UNKNOWN`` (0.6): unknown costs less than a mismatch (0.36).

These blocks tell apart characters that share hair AND outfit colour better than area
histograms (bench/eval_set hard_both ROC AUC 0.88 -> 0.95; all pairs 0.978 -> 0.989), but a
weight-free colour scorer stays short of CLIP on art where the eyes are a few pixels or closed.
No text tower: expression adherence cannot be scored with it. Block weights were chosen on the
calibration split of bench/eval_set only (thresholds.py has the figures).
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage

from avatar_pipeline.consistency.colour import rgb_to_lab
from avatar_pipeline.consistency.embedders.images import decode_rgb
from avatar_pipeline.consistency.isolation import Isolation, isolate
from avatar_pipeline.consistency.types import EmbedderInfo

PERCEPTUAL_MODEL = "character-lab-head-v3"

# Block weights (relative; squared weights are each block's share of the cosine). Chosen on the
# calib split of bench/eval_set (coordinate search on ROC AUC + hard-negative AUC).
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
_FACE_SEARCH = 0.6  # the face is looked for in this upper part of the figure
_INK_L = 25.0
_WORKING_SIDE = 128
_HEAD_FACE_WIDTH = 40  # the face's width in pixels on the head crop
_KERNEL_DIM = 256
_UNKNOWN = 0.6  # block cosine between an unknown (not found) and any known colour
_SKIN_SIGMA = 0.012
_EYE_SIGMA = 0.03
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


def _skin_like(lab: np.ndarray) -> np.ndarray:
    hue = np.degrees(np.arctan2(lab[..., 2], lab[..., 1])) % 360
    chroma = np.hypot(lab[..., 1], lab[..., 2])
    return (lab[..., 0] > 35) & (hue > 15) & (hue < 85) & (chroma > 6) & (chroma < 55)


def find_face(lab_img: np.ndarray, mask: np.ndarray, box: Box) -> tuple[Box, np.ndarray] | None:
    """(face box, face blob mask) on a Lab image: the skin-coloured blob in the upper part of
    the figure with the most face-like look (holes for eyes/mouth, near-square), or None."""
    _, y0, _, y1 = box
    upper = np.zeros_like(mask)
    upper[y0 : y0 + max(1, int(_FACE_SEARCH * (y1 - y0)))] = True
    labels, count = ndimage.label(_skin_like(lab_img) & mask & upper)
    if count == 0:
        return None
    areas = np.bincount(labels.ravel())[1:]
    objects = ndimage.find_objects(labels)
    best, best_score = 1, -1.0
    for i, sl in enumerate(objects, start=1):
        area = float(areas[i - 1])
        if sl is None or area < 0.15 * float(areas.max()):
            continue
        blob = labels[sl] == i
        holes = float((ndimage.binary_fill_holes(blob) & ~blob).sum())
        h, w = blob.shape
        score = (area + 6.0 * holes) * (0.5 + min(h, w) / max(h, w))
        if score > best_score:
            best, best_score = i, score
    rows, cols = objects[best - 1]
    return (cols.start, rows.start, cols.stop, rows.stop), labels == best


def _face_pixels(
    lab_img: np.ndarray,
    mask: np.ndarray,
    box: Box,
    ys: np.ndarray,
    xs: np.ndarray,
    lab: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """(skin, eyes) selectors over the foreground pixels ``ys, xs`` (kept for callers)."""
    none = np.zeros(len(ys), bool)
    found = find_face(lab_img, mask, box)
    if found is None:
        return none, none
    (fx0, fy0, fx1, fy1), blob = found
    skin = blob[ys, xs]
    inside = (ys >= fy0 + 0.25 * (fy1 - fy0)) & (ys < fy1) & (xs >= fx0) & (xs < fx1)
    eyes = inside & ~skin & (lab[:, 0] > _INK_L)
    return skin, eyes


def _head_crop(
    iso: Isolation, face: Box, source: Image.Image | None
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
    iso: Isolation, lab_img: np.ndarray, source: Image.Image | None
) -> dict[str, np.ndarray]:
    empty = {
        "head_hair": np.zeros(int(np.prod(_LAB_BINS))),
        "eye_chroma": np.zeros(_EYE_BINS * _EYE_BINS),
        "skin_tone": _kernel(None, _SKIN_SIGMA),
        "eye_colour": _kernel(None, _EYE_SIGMA),
    }
    found = find_face(lab_img, iso.mask, iso.box)
    if found is None:
        return empty
    rgb, mask, (fx0, fy0, fx1, fy1) = _head_crop(iso, found[0], source)
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        return empty
    lab_head = rgb_to_lab(rgb)
    lab = lab_head[ys, xs]
    in_box = np.zeros_like(mask)
    in_box[int(fy0) : int(np.ceil(fy1)), int(fx0) : int(np.ceil(fx1))] = True
    labels, count = ndimage.label(_skin_like(lab_head) & mask)
    if count:
        overlap = np.bincount(labels[in_box].ravel(), minlength=count + 1)
        overlap[0] = 0
        face_blob = labels == int(overlap.argmax()) if overlap.max() > 0 else in_box & mask
    else:
        face_blob = np.zeros_like(mask)
    is_face = face_blob[ys, xs]
    inside = in_box[ys, xs]
    eye_band = inside & (ys >= fy0 + 0.25 * (fy1 - fy0)) & (ys < fy0 + 0.8 * (fy1 - fy0))
    hair = ~inside & (ys < fy1)
    eye_lab = lab[eye_band & ~is_face & (lab[:, 0] > 20)]
    vivid = eye_lab[np.hypot(eye_lab[:, 1], eye_lab[:, 2]) >= 12]

    rgbf = rgb[ys, xs].astype(np.float64)
    chrom = (rgbf / np.maximum(rgbf.sum(axis=1, keepdims=True), 1.0))[:, :2]
    skin = np.median(chrom[is_face], axis=0) if is_face.sum() >= 4 else None
    hair_tone = np.median(chrom[hair], axis=0) if hair.sum() >= 4 else None
    saturation = rgbf.max(axis=1) - rgbf.min(axis=1)
    eyes = chrom[eye_band & ~is_face & (saturation > 40)]
    for tone in (hair_tone, skin):
        if tone is not None and len(eyes):
            eyes = eyes[np.linalg.norm(eyes - tone, axis=1) > 0.03]
    return {
        "head_hair": _lab_hist(lab[hair], 0.5),
        "eye_chroma": _ab_hist(vivid, (_EYE_BINS, _EYE_BINS), 0.7),
        "skin_tone": _kernel(skin, _SKIN_SIGMA),
        "eye_colour": _kernel(_mode_chromaticity(eyes), _EYE_SIGMA),
    }


def character_features(iso: Isolation, source: Image.Image | None = None) -> dict[str, np.ndarray]:
    """The embedder's blocks (before weighting) for an isolated character; ``source`` is the
    full-resolution image the isolation was made from (sharper face and eyes), if at hand."""
    lab_img = rgb_to_lab(np.asarray(iso.image, dtype=np.uint8))
    ys, xs = np.nonzero(iso.mask)
    lab = lab_img[ys, xs]
    _, y0, _, y1 = iso.box
    rel = (ys - y0) / max(1, y1 - y0)
    blocks = {
        "presence": _lab_hist(lab, 0.25, _FINE_BINS, _FINE_SMOOTH),
        "hair": _lab_hist(lab[rel < _HAIR_BAND], 0.5),
        "chroma": _chroma_hist(lab),
    }
    blocks.update(_head_features(iso, lab_img, source))
    return blocks


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
