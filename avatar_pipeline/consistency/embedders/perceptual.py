"""A weight-free embedder of the isolated character: its colours, where they sit, and how much.

The image is first reduced to the character (:func:`avatar_pipeline.consistency.isolation.
isolate`): the background never reaches the embedding, so the same character on another
background scores as itself and another character on the anchor's background does not borrow
the anchor's background. On the character's pixels (CIELAB) it concatenates, each block
L2-normalised and scaled by its weight (the cosine of two embeddings is the weight²-averaged
cosine of the blocks):

- ``colour``: a smoothed L x a x b histogram of the character, square-rooted (its block cosine
  is the Bhattacharyya coefficient of the two colour distributions);
- ``presence``: the same histogram to the power 1/4: which colours are there at all, so the
  eyes or a ribbon count almost as much as the outfit;
- ``hair``: the colour histogram of the top of the figure (hair in every framing);
- ``chroma``: an a x b histogram of the character's saturated pixels (lightness-free, so a
  brighter or dimmer picture of the same outfit still matches);
- ``skin`` and ``eyes``: the face is the largest skin-coloured blob in the upper 60 % of the
  figure (in any framing); ``skin`` is its colour histogram and ``eyes`` the histogram of the
  non-skin, non-ink pixels inside the face's box below its top quarter (eyes, brows, blush,
  glasses). They help with characters that share hair and outfit colours, but only partly
  (AUC 0.88 on such pairs of bench/eval_set; thresholds.py has the figures).

Histograms are smoothed in Lab (a Gaussian of ~1 bin), so a global brightness change of
±15 % or a ±5 % tint moves mass to neighbouring bins instead of emptying them. No text tower:
expression adherence cannot be scored with it.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from avatar_pipeline.consistency.colour import rgb_to_lab
from avatar_pipeline.consistency.embedders.images import decode_rgb
from avatar_pipeline.consistency.isolation import Isolation, isolate
from avatar_pipeline.consistency.types import EmbedderInfo

PERCEPTUAL_MODEL = "character-lab-face-v2"

# Block weights (relative; squared weights are each block's share of the cosine).
BLOCK_WEIGHTS: dict[str, float] = {
    "colour": 1.0,
    "presence": 1.0,
    "hair": 0.8,
    "chroma": 0.6,
    "skin": 0.6,
    "eyes": 0.6,
}

_LAB_BINS = (8, 10, 10)
_LAB_RANGE = ((0.0, 100.0), (-70.0, 80.0), (-70.0, 90.0))
_CHROMA_BINS = (12, 12)
_CHROMA_MIN = 18.0  # Lab chroma above which a pixel counts for the chroma block
_SMOOTH = 0.8  # Gaussian sigma in bins
_HAIR_BAND = 0.12
_FACE_SEARCH = 0.6  # the face is looked for in this upper part of the figure
_INK_L = 25.0
_WORKING_SIDE = 128


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def _lab_hist(lab: np.ndarray, power: float) -> np.ndarray:
    if len(lab) == 0:
        return np.zeros(int(np.prod(_LAB_BINS)))
    hist, _ = np.histogramdd(lab, bins=_LAB_BINS, range=_LAB_RANGE)
    hist = ndimage.gaussian_filter(hist, _SMOOTH, mode="constant")
    hist = hist.ravel() / max(float(hist.sum()), 1e-9)
    return hist**power


def _chroma_hist(lab: np.ndarray) -> np.ndarray:
    chroma = np.hypot(lab[:, 1], lab[:, 2])
    vivid = lab[chroma >= _CHROMA_MIN]
    if len(vivid) == 0:
        return np.zeros(int(np.prod(_CHROMA_BINS)))
    hist, _, _ = np.histogram2d(
        vivid[:, 1], vivid[:, 2], bins=_CHROMA_BINS, range=(_LAB_RANGE[1], _LAB_RANGE[2])
    )
    hist = ndimage.gaussian_filter(hist, _SMOOTH, mode="constant")
    return (hist.ravel() / max(float(hist.sum()), 1e-9)) ** 0.5


def character_features(iso: Isolation) -> dict[str, np.ndarray]:
    """The embedder's blocks (before weighting) for an isolated character."""
    lab_img = rgb_to_lab(np.asarray(iso.image, dtype=np.uint8))
    mask = iso.mask
    ys, xs = np.nonzero(mask)
    lab = lab_img[ys, xs]
    _, y0, _, y1 = iso.box
    rel = (ys - y0) / max(1, y1 - y0)
    skin, eyes = _face_pixels(lab_img, mask, iso.box, ys, xs, lab)
    return {
        "colour": _lab_hist(lab, 0.5),
        "presence": _lab_hist(lab, 0.25),
        "hair": _lab_hist(lab[rel < _HAIR_BAND], 0.5),
        "chroma": _chroma_hist(lab),
        "skin": _lab_hist(lab[skin], 0.5),
        "eyes": _lab_hist(lab[eyes], 0.5),
    }


def _skin_like(lab: np.ndarray) -> np.ndarray:
    hue = np.degrees(np.arctan2(lab[..., 2], lab[..., 1])) % 360
    chroma = np.hypot(lab[..., 1], lab[..., 2])
    return (lab[..., 0] > 35) & (hue > 15) & (hue < 85) & (chroma > 6) & (chroma < 55)


def _face_pixels(
    lab_img: np.ndarray,
    mask: np.ndarray,
    box: tuple[int, int, int, int],
    ys: np.ndarray,
    xs: np.ndarray,
    lab: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """(skin, eyes) selectors over the foreground pixels ``ys, xs``."""
    _, y0, _, y1 = box
    upper = np.zeros_like(mask)
    upper[y0 : y0 + max(1, int(_FACE_SEARCH * (y1 - y0)))] = True
    skin_map = _skin_like(lab_img) & mask & upper
    labels, count = ndimage.label(skin_map)
    none = np.zeros(len(ys), bool)
    if count == 0:
        return none, none
    face = int(np.bincount(labels.ravel())[1:].argmax()) + 1
    rows, cols = ndimage.find_objects(labels)[face - 1]
    fy0, fy1, fx0, fx1 = rows.start, rows.stop, cols.start, cols.stop
    skin = labels[ys, xs] == face
    inside = (ys >= fy0 + 0.25 * (fy1 - fy0)) & (ys < fy1) & (xs >= fx0) & (xs < fx1)
    eyes = inside & ~skin & (lab[:, 0] > _INK_L)
    return skin, eyes


class PerceptualEmbedder:
    """Embeds the isolated character (weight-free); no text tower."""

    info = EmbedderInfo("perceptual", PERCEPTUAL_MODEL, "none")
    cache_key = f"perceptual|{PERCEPTUAL_MODEL}|{sorted(BLOCK_WEIGHTS.items())}"

    @property
    def has_text_tower(self) -> bool:
        return False

    def embed_isolation(self, iso: Isolation) -> np.ndarray:
        blocks = character_features(iso)
        vector = np.concatenate([BLOCK_WEIGHTS[k] * _unit(v) for k, v in blocks.items()])
        return _unit(vector).astype(np.float32)

    def embed_one(self, image: object) -> np.ndarray:
        return self.embed_isolation(isolate(image, working_side=_WORKING_SIDE))  # type: ignore[arg-type]

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
        return 5 * int(np.prod(_LAB_BINS)) + int(np.prod(_CHROMA_BINS))
