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
   grey levels; the character is the foreground of either image (``consistency.isolation``,
   the same isolation the palette check uses, computed once per image);
5. the candidate is a copy of the other image when the changed share of the character is
   below ``Thresholds.copy_max_changed_fraction`` (see :data:`COPY_MAX_CHANGED_FRACTION`).

:func:`find_copy` compares a candidate with many images (every reference, the primary anchor,
the kit's siblings). Most of them are plainly different pictures, so it screens first: each
target is aligned (the coarse search of step 2, at ``COARSE_SIZE``) and its change estimated
on the 64 px images (steps 3-4 with the ``COARSE_*_SIGMA`` widths), a few milliseconds. A
target whose estimate is below ``SCREEN_MARGIN`` (2.5 %; the copy variants of
bench/copy_sweep.py estimate at most ~0.1 %, honest edits mostly 5 % and more) is a possible
copy: it is registered precisely and measured at working size, as every target used to be.
When no target is, only the one with the smallest estimate is (its registration a little
shorter, see :func:`_refine`), so the verdict's ``closest`` always carries a working-size
measurement; the other comparisons keep their estimate (``CopyComparison.refined`` is False)
and the verdict's ``why`` says how many were judged only coarsely. A copy can therefore be
missed only if its coarse estimate reaches the margin (test_consistency/test_copies.py keeps
every copy variant at least 5x below it). ``find_copy(..., screen=False)`` measures every
target at working size.

The candidate's side of the measure, each target's coarse warps and every image's
preparation are computed once and reused (per call, and per process for the last two); the
isolation is shared with the palette check (:func:`isolation_of`). Warps are separable
bilinear gathers (the values of ``ndimage.affine_transform(order=1)``), all scales of a search
at once.

Figures (sweep of offline-renderer anchors, bench/copy_sweep.py): every copy variant (exact,
brightness +-5 %, 2 % shift, 2 % crop, blur radius 2, JPEG 80) changes at most a fraction of a
per cent of the character; honest expression and pose edits change several per cent and more.
Cost per kit and per comparison: bench/bench_copy_cost.py (bench/README.md, "Not a copy").
"""

from __future__ import annotations

import io
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from threading import Lock
from typing import Any

import numpy as np
from PIL import Image
from scipy import fft, ndimage

from avatar_pipeline.consistency.embedders.images import decode_rgb, image_sha256
from avatar_pipeline.consistency.isolation import Isolation, isolate

WORK_SIZE = 192  # longer side of the working image, pixels
COARSE_SIZE = 64
COARSE_SIGMA = 0.7  # smoothing of the coarse image, coarse pixels
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
# The screen: a target whose change estimated at COARSE_SIZE is below this is measured at
# working size. Copy variants estimate at most ~0.1 % (bench/copy_sweep.py), honest edits
# mostly 5 % and more.
SCREEN_MARGIN = 0.025
# The change measure at COARSE_SIZE, in coarse pixels: wider than the working-size widths
# scaled down (bilinear resampling of a 64 px image softens edges that a narrower window would
# call changed: a 2 % shifted copy then estimated 2 %).
COARSE_POST_SIGMA = 0.6
COARSE_SSIM_SIGMA = 1.0
COARSE_COLOUR_SIGMA = 1.0
BORDER_FRACTION = 0.04  # outer ring used to model the background (fallback mask)
BACKGROUND_DISTANCE = 28.0  # colour distance from the border model that makes a pixel foreground

__all__ = [
    "COPY_MAX_CHANGED_FRACTION",
    "SCREEN_MARGIN",
    "CopyComparison",
    "CopyVerdict",
    "changed_fraction",
    "character_mask",
    "find_copy",
    "isolation_of",
    "screen_margin",
]


@dataclass(frozen=True)
class _Sigmas:
    """Gaussian widths of the change measure, in the pixels of the level it runs on."""

    post: float
    ssim: float
    colour: float


_FINE = _Sigmas(POST_SIGMA, SSIM_SIGMA, COLOUR_SIGMA)
_COARSE = _Sigmas(COARSE_POST_SIGMA, COARSE_SSIM_SIGMA, COARSE_COLOUR_SIGMA)


@dataclass(frozen=True, eq=False)
class _Level:
    """One image at one resolution: smoothed colour and the character mask, and luminance."""

    layers: np.ndarray  # H x W x 4 float32: rgb (smoothed, 0-255) and the mask (0/1)
    luma: np.ndarray  # H x W float32


@dataclass(frozen=True, eq=False)
class _Prepared:
    fine: _Level  # at the working size
    coarse: _Level  # at COARSE_SIZE
    # the coarse image warped at every scale of SCALES onto a grid, and the spectra of those
    # warps (the half of the coarse search that does not depend on the candidate), per grid
    stills: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)

    def coarse_stills(self, shape: tuple[int, int]) -> np.ndarray:
        if shape not in self.stills:
            self.stills[shape] = _still_spectra(self.coarse.luma, shape, SCALES)
        return self.stills[shape]


@dataclass(frozen=True)
class CopyComparison:
    """The candidate against one other image, after alignment."""

    against: str  # e.g. "reference 1", "primary anchor", "expression:happy"
    # share of the character whose structure or colour changed (at working size when
    # ``refined``, else the coarse estimate)
    changed_fraction: float
    scale: float
    shift: tuple[float, float]  # (dy, dx) in working pixels
    correlation: float  # normalised cross-correlation after alignment
    coarse_fraction: float = float("nan")  # the screen's estimate at COARSE_SIZE
    refined: bool = True  # measured at working size (False: screened out by the estimate)

    def as_dict(self) -> dict[str, Any]:
        return {
            "against": self.against,
            "changed_fraction": round(self.changed_fraction, 4),
            "coarse_changed_fraction": round(self.coarse_fraction, 4),
            "measured_at": "working size" if self.refined else "coarse size",
            "scale": self.scale,
            "shift": [round(self.shift[0], 2), round(self.shift[1], 2)],
            "correlation": round(self.correlation, 4),
        }


@dataclass(frozen=True)
class CopyVerdict:
    """Whether the candidate is a copy of any image it was compared with."""

    is_copy: bool
    # the working-size comparison with the least change (every comparison is one when the
    # screen measured them all, see find_copy)
    closest: CopyComparison | None
    comparisons: tuple[CopyComparison, ...]
    max_changed_fraction: float
    screen_margin: float = 0.0  # coarse estimates at or above this were not measured further

    @property
    def why(self) -> str:
        if self.closest is None:
            return "nothing to compare with"
        c = self.closest
        share = f"{100 * c.changed_fraction:.1f} % of the character changed"
        limit = f"{100 * self.max_changed_fraction:.1f} %"
        if self.is_copy:
            return f"a copy of the {c.against}: only {share} after alignment (needs {limit})"
        screened = sum(not x.refined for x in self.comparisons)
        if not screened:
            return (
                f"a new picture: {share} even against the closest image, the {c.against} "
                f"(needs {limit}; compared with {len(self.comparisons)})"
            )
        return (
            f"a new picture: {share} against the most similar image, the {c.against} "
            f"(needs {limit}; compared with {len(self.comparisons)}, of which {screened} "
            f"changed {100 * self.screen_margin:.1f} % or more at a coarse look)"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "is_copy": self.is_copy,
            "max_changed_fraction": self.max_changed_fraction,
            "closest": self.closest.as_dict() if self.closest else None,
            "compared": [c.against for c in self.comparisons],
        }


# ---------------------------------------------------------------- preparation


def _resize(img: Image.Image, longer: int) -> np.ndarray:
    w, h = img.size
    k = longer / max(w, h)
    size = (max(8, round(w * k)), max(8, round(h * k)))
    return np.asarray(img.resize(size, Image.Resampling.BOX), dtype=np.float32)


def _luma(rgb: np.ndarray) -> np.ndarray:
    # element-wise, not a matrix product: OpenBLAS would spread a product this small over
    # threads that spin (measured: twice the CPU on 2 cores)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return np.float32(0.299) * r + np.float32(0.587) * g + np.float32(0.114) * b


def character_mask(rgb: np.ndarray) -> np.ndarray:
    """The character: ``consistency.isolation``'s foreground of ``rgb`` (H x W x 3, 0-255) at
    its own size, or where isolation finds none, pixels far from a background model fitted to
    the image border (:func:`_border_mask`)."""
    h, w, _ = rgb.shape
    iso = isolate(Image.fromarray(rgb.astype(np.uint8)), working_side=max(h, w))
    if iso.found and iso.mask.shape == (h, w):
        return np.asarray(iso.mask, dtype=bool)
    return _border_mask(rgb)


def _border_mask(rgb: np.ndarray) -> np.ndarray:
    """Pixels far from a background model fitted to the image border.

    The model is a plane per channel (flat colours and gradients) fitted to the outer ring by
    least squares; where the background is busier than that, more of the frame counts as
    character (the measure then under-states change, never over-states it).
    """
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


_ISOLATIONS: OrderedDict[str, Isolation] = OrderedDict()
_PREPARED: OrderedDict[str, _Prepared] = OrderedDict()
_LOCK = Lock()
# images kept per memo: ~1 MB each prepared (192 px), ~0.15 MB each isolated; 16 kits of
# 14 images scored in one process still find their anchors and siblings
_MEMO = 256
_PREPARED_MEMO = 160


def _memo_get(memo: OrderedDict[str, Any], key: str) -> Any:
    with _LOCK:
        if key in memo:
            memo.move_to_end(key)
            return memo[key]
    return None


def _memo_put(memo: OrderedDict[str, Any], key: str, value: Any, size: int = _MEMO) -> None:
    with _LOCK:
        memo[key] = value
        if len(memo) > size:
            memo.popitem(last=False)


def isolation_of(data: bytes, working_side: int, sha: str | None = None) -> Isolation:
    """``isolate(data, working_side=...)``, memoised per image and side for this process.

    The copy check (at its working size) and the palette check (``PALETTE_WORKING_SIDE``, the
    same 192 px) share it, so each image of a kit is isolated once.
    """
    key = f"{sha or image_sha256(data)}:{working_side}"
    found = _memo_get(_ISOLATIONS, key)
    if found is None:
        found = isolate(decode_rgb(data), working_side=working_side)
        _memo_put(_ISOLATIONS, key, found)
    return found


def _longer_side(data: bytes) -> int:
    with Image.open(io.BytesIO(data)) as img:
        return max(img.size)


def _level(rgb: np.ndarray, mask: np.ndarray) -> _Level:
    layers = np.concatenate([rgb, mask[..., None].astype(np.float32)], axis=-1)
    return _Level(layers=layers, luma=_luma(rgb))


def _coarse_mask(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    img = Image.fromarray(mask.astype(np.float32))
    return np.asarray(img.resize((shape[1], shape[0]), Image.Resampling.BOX)) >= 0.5


def _prepare(
    data: bytes, side: int = WORK_SIZE, sigma: float = SMOOTH_SIGMA, sha: str | None = None
) -> _Prepared:
    """The working copy of an image at ``side`` pixels on its longer side, smoothed by
    ``sigma`` working pixels, and its coarse copy at ``COARSE_SIZE`` (memoised; ``sha``: the
    image's SHA-256 when the caller has it)."""
    sigma = round(sigma, 2)
    sha = sha or image_sha256(data)
    key = f"{sha}:{side}:{sigma}"
    found = _memo_get(_PREPARED, key)
    if found is not None:
        return found
    img = decode_rgb(data)
    raw = _resize(img, side)
    rgb = ndimage.gaussian_filter(raw, sigma=(sigma, sigma, 0))
    iso = isolation_of(data, side, sha)
    if iso.found and iso.mask.shape == raw.shape[:2]:
        mask = np.asarray(iso.mask, dtype=bool)
    else:
        mask = _border_mask(raw)
    coarse_rgb = ndimage.gaussian_filter(
        _resize(img, COARSE_SIZE), sigma=(COARSE_SIGMA, COARSE_SIGMA, 0)
    )
    value = _Prepared(
        fine=_level(rgb, mask),
        coarse=_level(coarse_rgb, _coarse_mask(mask, coarse_rgb.shape[:2])),
    )
    _memo_put(_PREPARED, key, value, _PREPARED_MEMO)
    return value


def _pair(
    candidate: bytes, other: bytes, shas: tuple[str | None, str | None] = (None, None)
) -> tuple[_Prepared, _Prepared]:
    """Both images at one working size: ``WORK_SIZE``, or the smaller image's own size (a
    down-scaled copy is never compared against detail it cannot have)."""
    sides = _longer_side(candidate), _longer_side(other)
    side = min(WORK_SIZE, *sides)
    sigma = max(SMOOTH_SIGMA, BLUR_TOLERANCE_PX * side / max(sides))
    return _prepare(candidate, side, sigma, shas[0]), _prepare(other, side, sigma, shas[1])


# ---------------------------------------------------------------- alignment


def _taps(
    n_out: int, n_in: int, scales: np.ndarray, shifts: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Linear interpolation along one axis, one row per (scale, shift): lower source index,
    weight of the upper one, and whether the sample lies inside the source (S x n_out each)."""
    out = np.arange(n_out, dtype=np.float64) - (n_out - 1) / 2
    coord = (n_in - 1) / 2 + (out[None, :] - shifts[:, None]) / scales[:, None]
    inside = (coord >= -1e-6) & (coord <= n_in - 1 + 1e-6)
    low = np.clip(np.floor(coord), 0, max(n_in - 2, 0)).astype(np.intp)
    weight = np.clip(coord - low, 0.0, 1.0).astype(np.float32)
    return low, weight, inside


def _warp_many(
    image: np.ndarray, shape: tuple[int, int], scales: Sequence[float], shifts: np.ndarray
) -> np.ndarray:
    """``image`` (H x W or H x W x C) magnified by each scale about its centre and moved by the
    matching shift (dy, dx), sampled bilinearly on a grid of ``shape`` centred the same way;
    S x shape (x C), NaN outside the image. Separable (rows, then columns), all channels at
    once; the same values as ``ndimage.affine_transform(order=1, cval=nan)``."""
    s = np.asarray(scales, dtype=np.float64)
    shifts = np.asarray(shifts, dtype=np.float64).reshape(len(s), 2)
    ly, wy, iy = _taps(shape[0], image.shape[0], s, shifts[:, 0])
    lx, wx, ix = _taps(shape[1], image.shape[1], s, shifts[:, 1])
    hy = np.minimum(ly + 1, image.shape[0] - 1)
    hx = np.minimum(lx + 1, image.shape[1] - 1)
    extra = (1,) * (image.ndim - 2)
    out = np.empty((len(s), *shape, *image.shape[2:]), dtype=np.float32)
    for k in range(len(s)):
        w = wy[k].reshape(-1, 1, *extra)
        rows = image[ly[k]] * (1 - w) + image[hy[k]] * w
        w = wx[k].reshape(1, -1, *extra)
        out[k] = rows[:, lx[k]] * (1 - w) + rows[:, hx[k]] * w
        out[k][~iy[k]] = np.nan
        out[k][:, ~ix[k]] = np.nan
    return out


def _warp(image: np.ndarray, shape: tuple[int, int], scale: float, shift: np.ndarray) -> np.ndarray:
    """:func:`_warp_many` for one scale and shift."""
    return _warp_many(image, shape, [scale], np.asarray(shift, dtype=np.float64)[None])[0]


@lru_cache(maxsize=32)
def _window(shape: tuple[int, int]) -> np.ndarray:
    return np.outer(np.hanning(shape[0]), np.hanning(shape[1])).astype(np.float32)


def _spectrum(a: np.ndarray) -> np.ndarray:
    """Spectrum of the mean-free, windowed image (or of each image of a stack)."""
    mean = a.mean(axis=(-2, -1), keepdims=True)
    return fft.rfft2((a - mean) * _window(a.shape[-2:]))


def _phase_shifts(fa: np.ndarray, fb: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Translation (dy, dx) that moves each image whose spectrum is in the stack ``fb`` onto
    the image whose spectrum is ``fa`` (sub-pixel, parabolic peak); S x 2."""
    cross = fa[None] * np.conj(fb)
    cross /= np.abs(cross) + 1e-9
    corr = fft.irfft2(cross, s=shape)
    n_s, h, w = corr.shape
    flat = corr.reshape(n_s, -1).argmax(axis=1)
    peak = np.stack([flat // w, flat % w], axis=1)
    shift = peak.astype(np.float64)
    rows = np.arange(n_s)
    for axis, n in ((0, h), (1, w)):
        values = []
        for d in (-1, 0, 1):
            j = peak.copy()
            j[:, axis] = (j[:, axis] + d) % n
            values.append(corr[rows, j[:, 0], j[:, 1]])
        denom = values[0] - 2 * values[1] + values[2]
        ok = np.abs(denom) > 1e-12
        step = 0.5 * (values[0] - values[2]) / np.where(ok, denom, 1.0)
        shift[:, axis] += np.where(ok, step, 0.0)
        shift[:, axis] -= np.where(shift[:, axis] > n / 2, n, 0)
    return shift


def _ncc_many(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Normalised cross-correlation of ``a`` with each image of ``b`` where it is not NaN (-1
    where less than half of it is)."""
    valid = ~np.isnan(b)
    n = valid.sum(axis=(1, 2))
    x = np.where(valid, a[None], 0.0).astype(np.float64)
    y = np.where(valid, b, 0.0).astype(np.float64)
    count = np.maximum(n, 1)[:, None, None]
    x = np.where(valid, x - x.sum(axis=(1, 2), keepdims=True) / count, 0.0)
    y = np.where(valid, y - y.sum(axis=(1, 2), keepdims=True) / count, 0.0)
    denom = np.sqrt((x * x).sum(axis=(1, 2)) * (y * y).sum(axis=(1, 2)))
    score = np.where(denom > 1e-9, (x * y).sum(axis=(1, 2)) / np.maximum(denom, 1e-9), 0.0)
    return np.where(n < 0.5 * a.size, -1.0, score)


Alignment = tuple[float, np.ndarray, float]  # scale, shift (dy, dx), correlation


def _still_spectra(b: np.ndarray, shape: tuple[int, int], scales: Sequence[float]) -> np.ndarray:
    """Spectra of ``b`` warped at each scale (no shift) onto a grid of ``shape``, the area
    outside ``b`` filled with its mean."""
    still = _warp_many(b, shape, scales, np.zeros((len(scales), 2)))
    valid = ~np.isnan(still)
    fill = np.where(valid, still, 0.0).sum(axis=(1, 2)) / np.maximum(valid.sum(axis=(1, 2)), 1)
    return _spectrum(np.where(valid, still, fill[:, None, None].astype(np.float32)))


def _register(
    a: np.ndarray,
    b: np.ndarray,
    scales: Sequence[float],
    fa: np.ndarray | None = None,
    fb: np.ndarray | None = None,
) -> Alignment:
    """Best (scale, shift, correlation) mapping ``b`` onto ``a`` over ``scales``, all scales at
    once: at each scale the shift by phase correlation, then the normalised cross-correlation
    of the aligned pair (``fa``, ``fb``: the spectra of ``a`` and of ``b``'s still warps when
    the caller has them)."""
    fa = _spectrum(a) if fa is None else fa
    fb = _still_spectra(b, a.shape, scales) if fb is None else fb
    shifts = _phase_shifts(fa, fb, a.shape)
    scores = _ncc_many(a, _warp_many(b, a.shape, scales, shifts))
    k = int(np.argmax(scores))
    return float(scales[k]), shifts[k], float(scores[k])


def _refine(
    cand: _Level, other: _Level, coarse: Alignment, ratio: float, fa: np.ndarray, precise: bool
) -> Alignment:
    """The working-size alignment, searched around the coarse one (``ratio``: working pixels
    per coarse pixel; ``fa``: the spectrum of the candidate's luminance).

    ``precise`` (a possible copy): scales coarse +-0.01 in steps of 0.005, then +-0.0025 around
    the best, to 1/800 (a 2 % crop is a 1.0417 zoom: a 0.4 % error misaligns edges by 0.5 px).
    Otherwise (the closest of images the screen found plainly new, measured only to report
    its change): coarse and +-0.01, then the vertex of the parabola through them.
    """
    if coarse[2] < REFINE_MIN_CORRELATION:
        # plainly different pictures: the coarse alignment is enough (a misalignment can only
        # add measured change, and only a near-perfect match can be a copy)
        return coarse[0], coarse[1] * ratio, coarse[2]
    # both are reduced to the same longer side, so a rescaled copy needs no extra factor
    if precise:
        fine = [round(coarse[0] + d, 4) for d in (-0.01, -0.005, 0.0, 0.005, 0.01)]
        best = _register(cand.luma, other.luma, fine, fa)
        finer = [round(best[0] + d, 5) for d in (-0.0025, 0.0025)]
    else:
        three = [round(coarse[0] + d, 4) for d in (-0.01, 0.0, 0.01)]
        fb = _still_spectra(other.luma, cand.luma.shape, three)
        shifts = _phase_shifts(fa, fb, cand.luma.shape)
        scores = _ncc_many(cand.luma, _warp_many(other.luma, cand.luma.shape, three, shifts))
        k = int(np.argmax(scores))
        best = (three[k], shifts[k], float(scores[k]))
        curve = scores[0] - 2 * scores[1] + scores[2]
        if k != 1 or curve >= -1e-12:
            return best
        vertex = three[1] + 0.005 * (scores[0] - scores[2]) / curve
        finer = [round(float(np.clip(vertex, three[0], three[2])), 5)]
    second = _register(cand.luma, other.luma, finer, fa)
    return second if second[2] > best[2] else best


# ---------------------------------------------------------------- change measure


def _radius(sigma: float) -> int:
    """Half-width of ``ndimage.gaussian_filter``'s kernel (truncate 4)."""
    return int(4.0 * sigma + 0.5)


class _Reference:
    """The candidate's side of the change measure at one level, computed once per candidate
    and reused for every image it is compared with."""

    def __init__(self, level: _Level, sigmas: _Sigmas) -> None:
        self.level = level
        self.sigmas = sigmas
        self.rgb = np.ascontiguousarray(level.layers[..., :3])
        self.mask = level.layers[..., 3] > 0.5
        soft = (sigmas.post, sigmas.post, 0)
        self.soft = ndimage.gaussian_filter(self.rgb, soft)
        self.luma = _luma(self.soft)
        self.mu = self._blur(self.luma)
        self.var = self._blur(self.luma * self.luma) - self.mu**2
        local = (sigmas.colour, sigmas.colour, 0)
        self.local = ndimage.gaussian_filter(self.soft, local)
        shape = self.mask.shape
        margin = max(1, round(EDGE_MARGIN * max(shape)))
        self.interior = np.zeros(shape, dtype=bool)
        self.interior[margin:-margin, margin:-margin] = True
        # filters reach this far: outside the character's box plus this, nothing counts
        self.pad = _radius(sigmas.post) + max(_radius(sigmas.ssim), _radius(sigmas.colour))

    def _blur(self, x: np.ndarray) -> np.ndarray:
        return ndimage.gaussian_filter(x, self.sigmas.ssim)

    def changed(self, layers: np.ndarray) -> float:
        """Share of the character changed between the candidate and ``layers`` (the other
        image's rgb and mask, warped onto the candidate; NaN outside it).

        Computed on the character's box plus the filters' reach (``pad``): the same result as
        on the whole frame, for less.
        """
        rgb, mask_other = layers[..., :3], layers[..., 3]
        valid = ~np.isnan(layers[..., 0])  # the warp leaves every layer NaN at the same pixels
        if valid.mean() < 0.5:
            return 1.0
        # a shift or crop by the frame edge replaces what lay along the border: judge the
        # interior; the character is the foreground of either image (NaN > 0.5 is False)
        character = (self.mask | (mask_other > 0.5)) & valid & self.interior
        rows = np.flatnonzero(character.any(axis=1))
        if rows.size == 0:
            return 1.0
        cols = np.flatnonzero(character.any(axis=0))
        h, w = character.shape
        box = (
            slice(max(0, rows[0] - self.pad), min(h, rows[-1] + 1 + self.pad)),
            slice(max(0, cols[0] - self.pad), min(w, cols[-1] + 1 + self.pad)),
        )
        gain, offset = _gain_offset(self.rgb, rgb, valid)
        normalised = np.where(valid[box][..., None], gain * rgb[box] + offset, self.rgb[box])
        # resampling softens the warped image a little: the candidate was softened alike
        soft = (self.sigmas.post, self.sigmas.post, 0)
        theirs = ndimage.gaussian_filter(normalised, soft)
        b = _luma(theirs)
        mu_a, var_a = self.mu[box], self.var[box]
        mu_b = self._blur(b)
        var_b = self._blur(b * b) - mu_b**2
        cov = self._blur(self.luma[box] * b) - mu_a * mu_b
        c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
        ssim = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / (
            (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
        )
        # colour moved: the local mean colours differ (an edge shifted by a fraction of a
        # pixel averages out; a recoloured or redrawn region does not)
        local = (self.sigmas.colour, self.sigmas.colour, 0)
        diff = np.abs(self.local[box] - ndimage.gaussian_filter(theirs, local))
        colour = np.maximum(np.maximum(diff[..., 0], diff[..., 1]), diff[..., 2])
        changed = (ssim < STRUCTURE_MIN) | (colour > COLOUR_MAX)
        area = int(np.count_nonzero(character))
        return float(np.count_nonzero(changed & character[box]) / area)


def _gain_offset(a: np.ndarray, b: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares ``a ~ gain * b + offset`` per channel over the ``valid`` pixels (H x W x 3
    each; brightness/contrast), gain kept in [0.5, 2]."""
    w = valid.reshape(-1).astype(np.float32)
    n = float(w.sum())
    x = a.reshape(-1, 3)
    y = np.where(valid[..., None], b, 0.0).reshape(-1, 3).astype(np.float32)
    # weighted sums by einsum (no BLAS threads, see _luma)
    am, bm = np.einsum("i,ij->j", w, x) / n, np.einsum("i,ij->j", w, y) / n
    xc, yc = x - am, y - bm
    var = np.einsum("i,ij,ij->j", w, yc, yc) / n
    cov = np.einsum("i,ij,ij->j", w, xc, yc) / n
    gain = np.where(var > 1e-6, cov / np.maximum(var, 1e-6), 1.0)
    gain = np.clip(gain, 0.5, 2.0).astype(np.float32)
    return gain, (am - gain * bm).astype(np.float32)


class _Candidate:
    """One candidate image's references (coarse and working size), built on first use."""

    def __init__(self) -> None:
        self._refs: dict[tuple[int, str], _Reference] = {}
        self._spectra: dict[int, np.ndarray] = {}

    def reference(self, level: _Level, sigmas: _Sigmas) -> _Reference:
        key = (id(level), "fine" if sigmas is _FINE else "coarse")
        if key not in self._refs:
            self._refs[key] = _Reference(level, sigmas)
        return self._refs[key]

    def spectrum(self, level: _Level) -> np.ndarray:
        if id(level) not in self._spectra:
            self._spectra[id(level)] = _spectrum(level.luma)
        return self._spectra[id(level)]


@dataclass
class _Pending:
    """A comparison after the screen: the coarse alignment and estimate."""

    label: str
    cand: _Prepared
    other: _Prepared
    coarse: Alignment
    estimate: float

    @property
    def ratio(self) -> float:
        return max(self.cand.fine.luma.shape) / max(self.cand.coarse.luma.shape)


def _screen(state: _Candidate, cand: _Prepared, other: _Prepared, label: str) -> _Pending:
    """Coarse alignment and the change estimated at ``COARSE_SIZE``."""
    a, b = cand.coarse, other.coarse
    shape = a.luma.shape
    coarse = _register(a.luma, b.luma, SCALES, state.spectrum(a), other.coarse_stills(shape))
    warped = _warp(b.layers, shape, coarse[0], coarse[1])
    estimate = state.reference(a, _COARSE).changed(warped)
    return _Pending(label, cand, other, coarse, estimate)


def _measured(state: _Candidate, p: _Pending, precise: bool = True) -> CopyComparison:
    """The comparison registered and measured at working size (``precise``: see
    :func:`_refine`)."""
    cand = p.cand.fine
    fa = state.spectrum(cand)
    scale, shift, correlation = _refine(cand, p.other.fine, p.coarse, p.ratio, fa, precise)
    warped = _warp(p.other.fine.layers, cand.luma.shape, scale, shift)
    fraction = state.reference(cand, _FINE).changed(warped)
    dy, dx = float(shift[0]), float(shift[1])
    return CopyComparison(p.label, fraction, scale, (dy, dx), correlation, p.estimate, True)


def _estimated(p: _Pending) -> CopyComparison:
    """The comparison as the screen left it (coarse alignment, coarse estimate)."""
    scale, shift, correlation = p.coarse
    dy, dx = float(shift[0]) * p.ratio, float(shift[1]) * p.ratio
    return CopyComparison(p.label, p.estimate, scale, (dy, dx), correlation, p.estimate, False)


def screen_margin(max_changed_fraction: float = COPY_MAX_CHANGED_FRACTION) -> float:
    """Coarse estimates below this are measured at working size: ``SCREEN_MARGIN``, scaled up
    with a copy limit raised above ``COPY_MAX_CHANGED_FRACTION``."""
    return SCREEN_MARGIN * max(1.0, max_changed_fraction / COPY_MAX_CHANGED_FRACTION)


def changed_fraction(
    candidate: bytes, other: bytes, against: str = "other image"
) -> CopyComparison:
    """How much of the character changed from ``other`` to ``candidate`` after alignment
    (registered precisely and measured at working size)."""
    state = _Candidate()
    return _measured(state, _screen(state, *_pair(candidate, other), against))


def find_copy(
    candidate: bytes,
    others: Sequence[tuple[str, bytes]],
    max_changed_fraction: float = COPY_MAX_CHANGED_FRACTION,
    *,
    screen: bool = True,
) -> CopyVerdict:
    """Compare ``candidate`` with each ``(label, image)``; a copy when any of them changed less
    than ``max_changed_fraction`` of the character. Identical bytes are skipped once each.

    Every target is first aligned and its change estimated at ``COARSE_SIZE``. With ``screen``
    (the default) a target is then registered precisely and measured at working size when its
    estimate is below :func:`screen_margin`; when none is, the target with the smallest
    estimate is measured at working size (its registration a little shorter), so ``closest``
    always carries a working-size measurement; the others keep their estimate
    (``refined=False``). Without ``screen`` every target is registered precisely and measured
    at working size.
    """
    seen: set[str] = set()
    state = _Candidate()
    pending: list[_Pending] = []
    own = image_sha256(candidate)
    for label, image in others:
        sha = image_sha256(image)
        if sha in seen:
            continue
        seen.add(sha)
        pending.append(_screen(state, *_pair(candidate, image, (own, sha)), label))
    margin = screen_margin(max_changed_fraction)
    results: dict[int, CopyComparison] = {}
    for i in sorted(range(len(pending)), key=lambda k: pending[k].estimate):
        possible_copy = pending[i].estimate < margin
        if screen and results and not possible_copy:
            break  # sorted: every later estimate is larger still
        results[i] = _measured(state, pending[i], precise=possible_copy or not screen)
    comparisons = [results.get(i) or _estimated(p) for i, p in enumerate(pending)]
    refined = [c for c in comparisons if c.refined]
    closest = min(refined, key=lambda c: c.changed_fraction, default=None)
    is_copy = closest is not None and closest.changed_fraction < max_changed_fraction
    return CopyVerdict(is_copy, closest, tuple(comparisons), max_changed_fraction, margin)
