"""Not-a-copy: how much of the character actually changed between two images, after alignment.

A provider that hands back one of its inputs (or a sibling image) re-encoded, re-sized,
slightly shifted, cropped, blurred or brightened has not drawn a new expression or pose. A pHash
distance alone cannot tell such a copy from an honest edit (an expression changes only the
face), so the check measures the change itself:

1. both images are reduced to a small working size (which also removes JPEG ringing, grain and
   mild blur) and smoothed a little;
2. the other image is registered onto the candidate: a coarse-to-fine search over scale
   (``SCALES``) with the translation found by phase correlation at each scale, keeping the
   alignment with the highest normalised cross-correlation (shifts, crops and rescales);
3. brightness and contrast are normalised by a least-squares gain and offset per channel;
4. a pixel of the character *changed* when its local structure differs (local SSIM of the
   luminance below ``STRUCTURE_MIN``) or its local colour moved by more than ``COLOUR_MAX``
   grey levels; the character is the foreground of either image (``character_mask``);
5. the candidate is a copy of the other image when the changed share of the character is
   below ``Thresholds.copy_max_changed_fraction`` (see :data:`COPY_MAX_CHANGED_FRACTION`).

Figures (sweep of offline-renderer anchors, bench/copy_sweep.py): every copy variant (exact,
brightness +-5 %, 2 % shift, 2 % crop, blur radius 2, JPEG 80) changes at most a fraction of a
per cent of the character; honest expression and pose edits change several per cent and more.
"""

from __future__ import annotations

import io
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from threading import Lock
from typing import Any

import numpy as np
from PIL import Image
from scipy import ndimage

from avatar_pipeline.consistency.embedders.images import image_sha256

WORK_SIZE = 192  # longer side of the working image, pixels
COARSE_SIZE = 64
SMOOTH_SIGMA = 1.0  # least pre-smoothing at working size (JPEG ringing, paper grain)
# ...and at least a blur of this radius in the delivered image's own pixels, so a copy blurred
# by up to 2 px looks like its original after both are smoothed alike
BLUR_TOLERANCE_PX = 2.5
SSIM_SIGMA = 1.5
STRUCTURE_MIN = 0.6  # local SSIM below this: the structure changed
COLOUR_MAX = 24.0  # local colour difference (0-255) above this: the colour changed
COLOUR_SIGMA = 2.0  # "local": Gaussian window of the colour comparison, working pixels
POST_SIGMA = 0.8  # both images again, after the warp (bilinear resampling softens one)
EDGE_MARGIN = 0.04  # the frame's outer band (of the longer side) is not judged
# below this correlation after the coarse search, two images are not refined further
REFINE_MIN_CORRELATION = 0.85
SCALES = tuple(round(0.88 + 0.02 * i, 2) for i in range(13))  # 0.88 .. 1.12
# Share of the character that must change for an image to count as a new picture.
COPY_MAX_CHANGED_FRACTION = 0.01
BORDER_FRACTION = 0.04  # outer ring used to model the background (fallback mask)
BACKGROUND_DISTANCE = 28.0  # colour distance from the border model that makes a pixel foreground

__all__ = [
    "COPY_MAX_CHANGED_FRACTION",
    "CopyComparison",
    "CopyVerdict",
    "changed_fraction",
    "character_mask",
    "find_copy",
]


@dataclass(frozen=True)
class _Prepared:
    rgb: np.ndarray  # H x W x 3 float32, smoothed, 0-255
    luma: np.ndarray  # H x W float32, smoothed
    mask: np.ndarray  # H x W bool, the character
    coarse: np.ndarray  # luma at COARSE_SIZE


@dataclass(frozen=True)
class CopyComparison:
    """The candidate against one other image, after alignment."""

    against: str  # e.g. "reference 1", "primary anchor", "expression:happy"
    changed_fraction: float  # share of the character whose structure or colour changed
    scale: float
    shift: tuple[float, float]  # (dy, dx) in working pixels
    correlation: float  # normalised cross-correlation after alignment

    def as_dict(self) -> dict[str, Any]:
        return {
            "against": self.against,
            "changed_fraction": round(self.changed_fraction, 4),
            "scale": self.scale,
            "shift": [round(self.shift[0], 2), round(self.shift[1], 2)],
            "correlation": round(self.correlation, 4),
        }


@dataclass(frozen=True)
class CopyVerdict:
    """Whether the candidate is a copy of any image it was compared with."""

    is_copy: bool
    closest: CopyComparison | None  # the comparison with the least change
    comparisons: tuple[CopyComparison, ...]
    max_changed_fraction: float

    @property
    def why(self) -> str:
        if self.closest is None:
            return "nothing to compare with"
        c = self.closest
        share = f"{100 * c.changed_fraction:.1f} % of the character changed"
        limit = f"{100 * self.max_changed_fraction:.1f} %"
        if self.is_copy:
            return f"a copy of the {c.against}: only {share} after alignment (needs {limit})"
        return (
            f"a new picture: {share} even against the closest image, the {c.against} "
            f"(needs {limit}; compared with {len(self.comparisons)})"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "is_copy": self.is_copy,
            "max_changed_fraction": self.max_changed_fraction,
            "closest": self.closest.as_dict() if self.closest else None,
            "compared": [c.against for c in self.comparisons],
        }


# ---------------------------------------------------------------- preparation


def _decode(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as img:
        return img.convert("RGB")


def _resize(img: Image.Image, longer: int) -> np.ndarray:
    w, h = img.size
    k = longer / max(w, h)
    size = (max(8, round(w * k)), max(8, round(h * k)))
    return np.asarray(img.resize(size, Image.Resampling.BOX), dtype=np.float32)


def _luma(rgb: np.ndarray) -> np.ndarray:
    return rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


def character_mask(rgb: np.ndarray) -> np.ndarray:
    """The character: pixels far from a background model fitted to the image border.

    The model is a plane per channel (flat colours and gradients) fitted to the outer ring by
    least squares; where the background is busier than that, more of the frame counts as
    character (the measure then under-states change, never over-states it). Uses
    ``consistency.isolation`` when it is available.
    """
    isolated = _isolation_mask(rgb)
    if isolated is not None:
        return isolated
    h, w, _ = rgb.shape
    ring = max(2, round(BORDER_FRACTION * min(h, w)))
    border = np.zeros((h, w), dtype=bool)
    border[:ring], border[-ring:], border[:, :ring], border[:, -ring:] = True, True, True, True
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    design = np.stack([np.ones_like(xx), xx / w, yy / h], axis=-1)
    coef, *_ = np.linalg.lstsq(design[border], rgb[border], rcond=None)
    background = design @ coef
    distance = np.sqrt(((rgb - background) ** 2).sum(axis=-1))
    mask = distance > BACKGROUND_DISTANCE
    mask = ndimage.binary_opening(mask, iterations=1)
    if mask.mean() < 0.02:  # nothing stands out: treat the whole frame as the subject
        return np.ones((h, w), dtype=bool)
    return mask


def _isolation_mask(rgb: np.ndarray) -> np.ndarray | None:
    """The foreground from ``consistency.isolation`` (same size), or None when it finds none."""
    try:
        from avatar_pipeline.consistency.isolation import isolate
    except ImportError:
        return None
    h, w, _ = rgb.shape
    iso = isolate(Image.fromarray(rgb.astype(np.uint8)), working_side=max(h, w))
    if not iso.found or iso.mask.shape != (h, w):
        return None
    return np.asarray(iso.mask, dtype=bool)


_PREPARED: OrderedDict[str, _Prepared] = OrderedDict()
_LOCK = Lock()
_MEMO = 256


def _longer_side(data: bytes) -> int:
    with Image.open(io.BytesIO(data)) as img:
        return max(img.size)


def _prepare(data: bytes, side: int = WORK_SIZE, sigma: float = SMOOTH_SIGMA) -> _Prepared:
    """The working copy of an image at ``side`` pixels on its longer side, smoothed by
    ``sigma`` working pixels (memoised)."""
    sigma = round(sigma, 2)
    key = f"{image_sha256(data)}:{side}:{sigma}"
    with _LOCK:
        if key in _PREPARED:
            _PREPARED.move_to_end(key)
            return _PREPARED[key]
    img = _decode(data)
    raw = _resize(img, side)
    rgb = ndimage.gaussian_filter(raw, sigma=(sigma, sigma, 0))
    coarse = _luma(ndimage.gaussian_filter(_resize(img, COARSE_SIZE), sigma=(0.7, 0.7, 0)))
    value = _Prepared(rgb=rgb, luma=_luma(rgb), mask=character_mask(raw), coarse=coarse)
    with _LOCK:
        _PREPARED[key] = value
        if len(_PREPARED) > _MEMO:
            _PREPARED.popitem(last=False)
    return value


def _pair(candidate: bytes, other: bytes) -> tuple[_Prepared, _Prepared]:
    """Both images at one working size: ``WORK_SIZE``, or the smaller image's own size (a
    down-scaled copy is never compared against detail it cannot have)."""
    sides = _longer_side(candidate), _longer_side(other)
    side = min(WORK_SIZE, *sides)
    sigma = max(SMOOTH_SIGMA, BLUR_TOLERANCE_PX * side / max(sides))
    return _prepare(candidate, side, sigma), _prepare(other, side, sigma)


# ---------------------------------------------------------------- alignment


def _warp(image: np.ndarray, shape: tuple[int, int], scale: float, shift: np.ndarray) -> np.ndarray:
    """``image`` magnified by ``scale`` about its centre, moved by ``shift`` (dy, dx), sampled
    on a grid of ``shape`` centred the same way; NaN outside the image."""
    centre_out = (np.array(shape, dtype=np.float64) - 1) / 2
    centre_in = (np.array(image.shape[:2], dtype=np.float64) - 1) / 2
    offset = centre_in - (centre_out + shift) / scale
    matrix = np.array([1 / scale, 1 / scale])
    if image.ndim == 2:
        return ndimage.affine_transform(
            image, matrix, offset=offset, output_shape=shape, order=1, cval=np.nan
        )
    return np.stack(
        [
            ndimage.affine_transform(
                image[..., c], matrix, offset=offset, output_shape=shape, order=1, cval=np.nan
            )
            for c in range(image.shape[2])
        ],
        axis=-1,
    )


@lru_cache(maxsize=32)
def _window(shape: tuple[int, int]) -> np.ndarray:
    return np.outer(np.hanning(shape[0]), np.hanning(shape[1])).astype(np.float32)


def _spectrum(a: np.ndarray) -> np.ndarray:
    return np.fft.rfft2((a - a.mean()) * _window(a.shape))


def _phase_shift(fa: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Translation (dy, dx) that moves ``b`` onto the image whose spectrum is ``fa`` (sub-pixel,
    parabolic peak)."""
    cross = fa * np.conj(_spectrum(b))
    cross /= np.abs(cross) + 1e-9
    corr = np.fft.irfft2(cross, s=b.shape)
    peak = np.array(np.unravel_index(int(np.argmax(corr)), corr.shape))
    shift = peak.astype(np.float64)
    for axis in (0, 1):
        n = corr.shape[axis]
        idx = [int(peak[0]), int(peak[1])]
        values = []
        for d in (-1, 0, 1):
            j = list(idx)
            j[axis] = (idx[axis] + d) % n
            values.append(corr[j[0], j[1]])
        denom = values[0] - 2 * values[1] + values[2]
        if abs(denom) > 1e-12:
            shift[axis] += 0.5 * (values[0] - values[2]) / denom
        if shift[axis] > n / 2:
            shift[axis] -= n
    return shift


def _ncc(a: np.ndarray, b: np.ndarray) -> float:
    valid = ~np.isnan(b)
    if valid.mean() < 0.5:
        return -1.0
    x, y = a[valid], b[valid]
    x, y = x - x.mean(), y - y.mean()
    denom = float(np.sqrt((x * x).sum() * (y * y).sum()))
    return float((x * y).sum() / denom) if denom > 1e-9 else 0.0


Alignment = tuple[float, np.ndarray, float]  # scale, shift (dy, dx), correlation


def _register(a: np.ndarray, b: np.ndarray, scales: Sequence[float]) -> Alignment:
    """Best (scale, shift, correlation) mapping ``b`` onto ``a`` over ``scales``."""
    fa = _spectrum(a)
    best: Alignment = (1.0, np.zeros(2), -2.0)
    for scale in scales:
        warped = _warp(b, a.shape, scale, np.zeros(2))
        filled = np.where(np.isnan(warped), np.nanmean(warped), warped)
        shift = _phase_shift(fa, filled)
        score = _ncc(a, _warp(b, a.shape, scale, shift))
        if score > best[2]:
            best = (scale, shift, score)
    return best


def _align(cand: _Prepared, other: _Prepared) -> Alignment:
    coarse = _register(cand.coarse, other.coarse, SCALES)
    if coarse[2] < REFINE_MIN_CORRELATION:
        # plainly different pictures: the coarse alignment is enough (a misalignment can only
        # add measured change, and only a near-perfect match can be a copy)
        ratio = max(cand.luma.shape) / max(cand.coarse.shape)
        return coarse[0], coarse[1] * ratio, coarse[2]
    # both are reduced to the same longer side, so a rescaled copy needs no extra factor;
    # refine to 1/800 (a 2 % crop is a 1.0417 zoom: a 0.4 % error misaligns edges by 0.5 px)
    fine = [round(coarse[0] + d, 4) for d in (-0.01, -0.005, 0.0, 0.005, 0.01)]
    best = _register(cand.luma, other.luma, fine)
    finer = [round(best[0] + d, 5) for d in (-0.0025, 0.0025)]
    second = _register(cand.luma, other.luma, finer)
    return second if second[2] > best[2] else best


# ---------------------------------------------------------------- change measure


def _ssim_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    blur = lambda x: ndimage.gaussian_filter(x, SSIM_SIGMA)  # noqa: E731
    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    return ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / (
        (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    )


def _gain_offset(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Least-squares ``a ~ gain * b + offset`` (brightness/contrast), gain kept in [0.5, 2]."""
    bm, am = float(b.mean()), float(a.mean())
    var = float(((b - bm) ** 2).mean())
    gain = float(((a - am) * (b - bm)).mean() / var) if var > 1e-6 else 1.0
    gain = float(np.clip(gain, 0.5, 2.0))
    return gain, am - gain * bm


def _compare(cand: _Prepared, other: _Prepared, label: str) -> CopyComparison:
    scale, shift, correlation = _align(cand, other)
    shape = cand.luma.shape
    rgb = _warp(other.rgb, shape, scale, shift)
    mask_other = _warp(other.mask.astype(np.float32), shape, scale, shift)
    valid = ~np.isnan(rgb).any(axis=-1)
    if valid.mean() < 0.5:
        return CopyComparison(label, 1.0, scale, (float(shift[0]), float(shift[1])), correlation)
    normalised = np.empty_like(rgb)
    for c in range(3):
        gain, offset = _gain_offset(cand.rgb[..., c][valid], rgb[..., c][valid])
        normalised[..., c] = gain * rgb[..., c] + offset
    # outside the overlap, borrow the candidate itself (those pixels are excluded anyway)
    normalised = np.where(valid[..., None], normalised, cand.rgb)
    # resampling softens the warped image a little: soften the candidate alike
    soft = (POST_SIGMA, POST_SIGMA, 0)
    mine = ndimage.gaussian_filter(cand.rgb, soft)
    theirs = ndimage.gaussian_filter(normalised, soft)
    ssim = _ssim_map(_luma(mine), _luma(theirs))
    # colour moved: the local mean colours differ (an edge shifted by a fraction of a pixel
    # averages out; a recoloured or redrawn region does not)
    local = (COLOUR_SIGMA, COLOUR_SIGMA, 0)
    colour = np.abs(ndimage.gaussian_filter(mine, local) - ndimage.gaussian_filter(theirs, local))
    colour = colour.max(axis=-1)
    changed = (ssim < STRUCTURE_MIN) | (colour > COLOUR_MAX)
    # a shift or crop by the frame edge replaces what lay along the border: judge the interior
    margin = max(1, round(EDGE_MARGIN * max(shape)))
    interior = np.zeros(shape, dtype=bool)
    interior[margin:-margin, margin:-margin] = True
    character = (cand.mask | (np.nan_to_num(mask_other) > 0.5)) & valid & interior
    area = int(character.sum())
    fraction = float((changed & character).sum() / area) if area else 1.0
    return CopyComparison(label, fraction, scale, (float(shift[0]), float(shift[1])), correlation)


def changed_fraction(
    candidate: bytes, other: bytes, against: str = "other image"
) -> CopyComparison:
    """How much of the character changed from ``other`` to ``candidate`` after alignment."""
    return _compare(*_pair(candidate, other), against)


def find_copy(
    candidate: bytes,
    others: Sequence[tuple[str, bytes]],
    max_changed_fraction: float = COPY_MAX_CHANGED_FRACTION,
) -> CopyVerdict:
    """Compare ``candidate`` with each ``(label, image)``; a copy when any of them changed less
    than ``max_changed_fraction`` of the character. Identical bytes are skipped once each."""
    seen: set[str] = set()
    comparisons: list[CopyComparison] = []
    for label, image in others:
        sha = image_sha256(image)
        if sha in seen:
            continue
        seen.add(sha)
        comparisons.append(_compare(*_pair(candidate, image), label))
    closest = min(comparisons, key=lambda c: c.changed_fraction, default=None)
    is_copy = closest is not None and closest.changed_fraction < max_changed_fraction
    return CopyVerdict(is_copy, closest, tuple(comparisons), max_changed_fraction)
