"""The palette contract: the model sheet's colour callouts, and how far a candidate drifts.

:func:`extract_palette` isolates the character on the primary anchor, clusters its pixels in
CIELAB (each distinct colour once, weighted by its pixel count) and names the key colours by
where they sit on the figure:

- ``hair``: the main colour of the top of the figure (the top 12 % of the character's box),
- ``skin``: the main skin-like colour of the face band below it (warm hue, light enough),
- ``eyes``: the median of the face band's pixels that are neither hair, skin nor outline ink,
- ``outfit``: the main colour of the lower part of the figure that is not hair or skin,
- ``accent``, ``accent2``, ...: the other clusters covering at least 2 % of the character.

Each colour carries its share of the character's area. :func:`compare_palette` finds each
callout on a candidate (hair again by position; the others as the nearest colour the candidate
actually shows in a meaningful area) and scores it with CIEDE2000. A callout drifts when its
ΔE exceeds ``max_delta_e`` (the eyes, small and closed in some expressions, get the looser
``PALETTE_MAX_DELTA_E_EYES`` scaled alike); the verdict names every drifted colour, e.g.
``hair ΔE 23 (#1b1a22 → #6b3b22)``.

The isolation at ``PALETTE_WORKING_SIDE`` is memoised and shared with the not-a-copy check
(``copies.isolation_of``): scoring a kit isolates each image once. Cost: bench/bench_copy_cost.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from avatar_pipeline.consistency.colour import ciede2000, lab_to_rgb, rgb_hex, rgb_to_lab
from avatar_pipeline.consistency.copies import isolation_of
from avatar_pipeline.consistency.isolation import Isolation

PALETTE_SCHEMA = 1
PALETTE_WORKING_SIDE = 192
_HAIR_BAND = 0.12  # top of the character's box that is hair
_MIN_ACCENT_SHARE = 0.02
_MERGE_DELTA = 10.0  # ΔE76 within which quantised colours are one cluster
_MAX_SEED_CELLS = 300
_INK_MAX_L = 22.0  # outline ink and deep shadow
_HAIR_MIN_SHARE = 0.01  # a hair colour elsewhere on the candidate must cover this much of it

__all__ = [
    "PALETTE_SCHEMA",
    "PaletteColour",
    "PaletteComparison",
    "PaletteContract",
    "PaletteDelta",
    "compare_palette",
    "extract_palette",
    "palette_from_isolation",
]


@dataclass(frozen=True)
class PaletteColour:
    name: str
    hex: str
    lab: tuple[float, float, float]
    share: float  # of the character's area

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "hex": self.hex,
            "lab": [round(v, 2) for v in self.lab],
            "share": round(self.share, 4),
        }


@dataclass(frozen=True)
class PaletteContract:
    """The key colours of a character, extracted from its primary anchor."""

    colours: tuple[PaletteColour, ...]
    foreground_fraction: float = 0.0
    method: str = ""
    schema: int = PALETTE_SCHEMA

    def get(self, name: str) -> PaletteColour | None:
        return next((c for c in self.colours if c.name == name), None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "method": self.method,
            "foreground_fraction": round(self.foreground_fraction, 4),
            "colours": [c.as_dict() for c in self.colours],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PaletteContract:
        try:
            colours = tuple(
                PaletteColour(
                    name=str(c["name"]),
                    hex=str(c["hex"]),
                    lab=(float(c["lab"][0]), float(c["lab"][1]), float(c["lab"][2])),
                    share=float(c["share"]),
                )
                for c in data["colours"]
            )
            return cls(
                colours=colours,
                foreground_fraction=float(data.get("foreground_fraction", 0.0)),
                method=str(data.get("method", "")),
                schema=int(data.get("schema", PALETTE_SCHEMA)),
            )
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise ValueError(f"not a palette contract: {exc}") from exc


@dataclass(frozen=True)
class PaletteDelta:
    name: str
    anchor_hex: str
    candidate_hex: str | None  # None: nothing like it on the candidate
    delta_e: float
    share: float
    passed: bool
    # Small callouts (eyes, accents) are reported but do not fail the check on their own: an
    # expression may close the eyes or add a blush, and a full-body framing shrinks them to a
    # few pixels (measured: a binding eye limit rejected ~10 % of same-character images).
    binding: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "anchor_hex": self.anchor_hex,
            "candidate_hex": self.candidate_hex,
            "delta_e": round(self.delta_e, 2),
            "share": round(self.share, 4),
            "passed": self.passed,
            "binding": self.binding,
        }

    def describe(self) -> str:
        target = self.candidate_hex or "missing"
        return f"{self.name} ΔE {self.delta_e:.0f} ({self.anchor_hex} → {target})"


@dataclass(frozen=True)
class PaletteComparison:
    deltas: tuple[PaletteDelta, ...]
    max_delta_e: float
    measured: bool = True
    notes: tuple[str, ...] = field(default=())

    @property
    def passed(self) -> bool:
        return self.measured and all(d.passed or not d.binding for d in self.deltas)

    @property
    def drifted(self) -> list[PaletteDelta]:
        """Drifted colours that fail the check (hair, skin, outfit)."""
        return [d for d in self.deltas if not d.passed and d.binding]

    @property
    def advisory(self) -> list[PaletteDelta]:
        """Drifted small callouts: named in the verdict, not failing it."""
        return [d for d in self.deltas if not d.passed and not d.binding]

    @property
    def worst(self) -> PaletteDelta | None:
        return max(self.deltas, key=lambda d: d.delta_e, default=None)

    @property
    def verdict(self) -> str:
        if not self.measured:
            return "palette not measured: " + "; ".join(self.notes)
        drifted, advisory = self.drifted, self.advisory
        note = (
            "; advisory (small callout, may be closed or hidden): "
            + "; ".join(d.describe() for d in advisory)
            if advisory
            else ""
        )
        if drifted:
            return "; ".join(d.describe() for d in drifted) + note
        worst = max((d for d in self.deltas if d.binding), key=lambda d: d.delta_e, default=None)
        head = f"palette matches (max ΔE {worst.delta_e:.0f})" if worst else "palette matches"
        return head + note

    def as_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "measured": self.measured,
            "max_delta_e": self.max_delta_e,
            "verdict": self.verdict,
            "deltas": [d.as_dict() for d in self.deltas],
            "notes": list(self.notes),
        }


@dataclass
class _Clusters:
    centres: np.ndarray  # K x 3 Lab
    labels: np.ndarray  # per foreground pixel
    shares: np.ndarray  # K


def _cluster(lab: np.ndarray, weights: np.ndarray | None = None, step: float = 5.0) -> _Clusters:
    """Greedy clustering: quantise, then merge bins (most frequent first) within _MERGE_DELTA.

    ``lab`` holds one row per pixel, or one per distinct colour with ``weights`` its pixel
    count (the same clusters, shares and labels, computed once per colour).
    """
    w = np.ones(len(lab), dtype=np.int64) if weights is None else np.asarray(weights, np.int64)
    q = np.round(lab / step).astype(np.int64) + 512
    flat = (q[:, 0] * 1024 + q[:, 1]) * 1024 + q[:, 2]
    keys, cell = np.unique(flat, return_inverse=True)
    counts = np.bincount(cell, weights=w, minlength=len(keys)).astype(np.int64)
    uniq = np.stack([keys // (1024 * 1024), (keys // 1024) % 1024, keys % 1024], axis=1) - 512
    # the most frequent cells found the clusters; rare cells join them in the final assignment
    order = np.argsort(-counts, kind="stable")[:_MAX_SEED_CELLS]
    centres = np.zeros((len(order), 3), dtype=np.float64)
    weights_of = np.zeros(len(order), dtype=np.float64)
    k = 0
    for i in order:
        colour = uniq[i] * step
        if k:
            d = np.sqrt(((centres[:k] - colour) ** 2).sum(-1))
            j = int(d.argmin())
            if d[j] <= _MERGE_DELTA:
                total = weights_of[j] + counts[i]
                centres[j] = (centres[j] * weights_of[j] + colour * counts[i]) / total
                weights_of[j] = total
                continue
        centres[k] = colour
        weights_of[k] = float(counts[i])
        k += 1
    c = centres[:k]
    labels = np.sqrt(((lab[:, None, :] - c[None, :, :]) ** 2).sum(-1)).argmin(axis=1)
    # One refinement step: centres become the mean of their pixels.
    n = np.bincount(labels, weights=w, minlength=len(c))
    sums = np.stack(
        [np.bincount(labels, weights=w * lab[:, ch], minlength=len(c)) for ch in range(3)], axis=1
    )
    refined = np.where(n[:, None] > 0, sums / np.maximum(n, 1)[:, None], c)
    shares = n / max(float(w.sum()), 1.0)
    return _Clusters(refined, labels, shares)


def _skin_like(lab: np.ndarray) -> np.ndarray:
    hue = np.degrees(np.arctan2(lab[..., 2], lab[..., 1])) % 360
    chroma = np.hypot(lab[..., 1], lab[..., 2])
    return (lab[..., 0] > 35) & (hue > 15) & (hue < 85) & (chroma > 6) & (chroma < 55)


def _dominant(
    labels: np.ndarray, exclude: set[int], allowed: np.ndarray | None = None
) -> int | None:
    if labels.size == 0:
        return None
    counts = np.bincount(labels, minlength=int(labels.max()) + 1).astype(float)
    for k in exclude:
        if k < len(counts):
            counts[k] = 0
    if allowed is not None:
        counts[: len(allowed)] *= allowed[: len(counts)]
    if counts.max() <= 0:
        return None
    return int(counts.argmax())


def _colour(name: str, lab: np.ndarray, share: float) -> PaletteColour:
    return PaletteColour(
        name=name,
        hex=rgb_hex(lab_to_rgb(lab)),
        lab=(float(lab[0]), float(lab[1]), float(lab[2])),
        share=float(share),
    )


@dataclass
class _Named:
    colours: list[PaletteColour]
    clusters: _Clusters
    hair: np.ndarray | None  # Lab of the hair region's colour


def _name_colours(iso: Isolation) -> _Named:
    arr = np.asarray(iso.image, dtype=np.uint8)
    ys, xs = np.nonzero(iso.mask)
    # the character has a few thousand distinct colours for ~20 000 pixels: convert and
    # cluster each colour once, weighted by its pixel count
    px = arr[ys, xs].astype(np.int32)
    keys, inverse, counts = np.unique(
        (px[:, 0] << 16) | (px[:, 1] << 8) | px[:, 2], return_inverse=True, return_counts=True
    )
    distinct = np.stack([keys >> 16, (keys >> 8) & 255, keys & 255], axis=1).astype(np.uint8)
    distinct_lab = rgb_to_lab(distinct)
    by_colour = _cluster(distinct_lab, counts)
    lab = distinct_lab[inverse]
    clusters = _Clusters(by_colour.centres, by_colour.labels[inverse], by_colour.shares)
    x0, y0, x1, y1 = iso.box
    height = max(1, y1 - y0)
    width = max(1, x1 - x0)
    rel_y = (ys - y0) / height
    rel_x = (xs - x0) / width
    ink = clusters.centres[:, 0] < _INK_MAX_L
    named: list[PaletteColour] = []
    used: set[int] = set(np.nonzero(ink)[0].tolist())

    top = clusters.labels[rel_y < _HAIR_BAND]
    hair_k = _dominant(top, set())
    if hair_k is not None and ink[hair_k] and (top == hair_k).mean() < 0.35:
        # the outline is not the hair, unless it fills the top (black or dark hair)
        hair_k = _dominant(top, used) or hair_k
    hair_lab = None
    if hair_k is not None:
        hair_lab = clusters.centres[hair_k]
        named.append(_colour("hair", hair_lab, clusters.shares[hair_k]))
        used.add(hair_k)

    face = (rel_y >= _HAIR_BAND) & (rel_y < 0.5) & (np.abs(rel_x - 0.5) < 0.3)
    skin_ok = _skin_like(clusters.centres).astype(float)
    skin_k = _dominant(clusters.labels[face], used, skin_ok)
    if skin_k is not None:
        named.append(_colour("skin", clusters.centres[skin_k], clusters.shares[skin_k]))
        used.add(skin_k)
        # Eyes: face-band pixels far from skin and hair and lighter than ink.
        face_lab = lab[face]
        far = ciede2000(face_lab, clusters.centres[skin_k]) > 15
        if hair_lab is not None:
            far &= ciede2000(face_lab, hair_lab) > 15
        far &= face_lab[:, 0] > _INK_MAX_L
        far &= face_lab[:, 0] < 92  # eye highlights and white shirts are not eye colour
        coloured = far & (np.hypot(face_lab[:, 1], face_lab[:, 2]) >= 10)
        if coloured.sum() >= 6:  # irises have a colour; greys there are anti-aliased edges
            far = coloured
        if far.sum() >= 6:
            eye_k = _dominant(clusters.labels[face][far], set())
            assert eye_k is not None
            eye_px = far & (clusters.labels[face] == eye_k)
            eye_lab = np.median(face_lab[eye_px], axis=0)
            named.append(_colour("eyes", eye_lab, float(eye_px.sum()) / len(lab)))

    lower = rel_y >= 0.55
    outfit_k = _dominant(clusters.labels[lower], used)
    if outfit_k is not None and clusters.shares[outfit_k] >= _MIN_ACCENT_SHARE:
        named.append(_colour("outfit", clusters.centres[outfit_k], clusters.shares[outfit_k]))
        used.add(outfit_k)

    rest = [k for k in np.argsort(-clusters.shares) if k not in used]
    for n, k in enumerate(rest, start=1):
        if clusters.shares[k] < _MIN_ACCENT_SHARE:
            break
        named.append(
            _colour("accent" if n == 1 else f"accent{n}", clusters.centres[k], clusters.shares[k])
        )
        if n >= 3:
            break
    return _Named(named, clusters, hair_lab)


def palette_from_isolation(iso: Isolation) -> PaletteContract:
    """The palette contract of an already isolated character."""
    return PaletteContract(
        colours=tuple(_name_colours(iso).colours),
        foreground_fraction=iso.foreground_fraction,
        method=iso.method,
    )


def extract_palette(image_bytes: bytes) -> PaletteContract:
    """The palette contract of the character on ``image_bytes`` (the primary anchor)."""
    return palette_from_isolation(isolation_of(image_bytes, PALETTE_WORKING_SIDE))


def compare_palette(
    contract: PaletteContract | Mapping[str, Any],
    image_bytes: bytes,
    max_delta_e: float | None = None,
) -> PaletteComparison:
    """Score each callout of ``contract`` on the candidate image by CIEDE2000."""
    from avatar_pipeline.consistency.embedders.thresholds import (
        PALETTE_MAX_DELTA_E,
        PALETTE_MAX_DELTA_E_EYES,
    )

    _EYES_FACTOR = PALETTE_MAX_DELTA_E_EYES / PALETTE_MAX_DELTA_E

    if not isinstance(contract, PaletteContract):
        contract = PaletteContract.from_dict(contract)
    limit = PALETTE_MAX_DELTA_E if max_delta_e is None else float(max_delta_e)
    iso = isolation_of(image_bytes, PALETTE_WORKING_SIDE)
    if not iso.found:
        return PaletteComparison((), limit, measured=False, notes=iso.notes)
    if not contract.colours:
        return PaletteComparison(
            (), limit, measured=False, notes=("the palette contract has no colours",)
        )
    cand = _name_colours(iso)
    centres = cand.clusters.centres
    # Colours the candidate shows in a meaningful area (small callouts like eyes may be small).
    deltas: list[PaletteDelta] = []
    for colour in contract.colours:
        ref = np.asarray(colour.lab)
        # hair: the top of the figure, or (a hat, a crop) a colour covering a real area
        min_share = _HAIR_MIN_SHARE if colour.name == "hair" else min(0.004, colour.share / 4)
        options = [centres[k] for k in range(len(centres)) if cand.clusters.shares[k] >= min_share]
        options.extend(np.asarray(c.lab) for c in cand.colours if c.name == colour.name)
        if colour.name == "hair" and cand.hair is not None:
            options.append(cand.hair)
        if not options:
            deltas.append(
                PaletteDelta(
                    colour.name, colour.hex, None, 100.0, colour.share, False, _binding(colour)
                )
            )
            continue
        d = ciede2000(np.asarray(options), ref)
        found = options[int(d.argmin())]
        delta = float(d.min())
        own_limit = limit * (_EYES_FACTOR if colour.name == "eyes" else 1.0)
        if colour.name == "hair" and cand.hair is not None and delta > own_limit:
            # drifted: report what is on top of the figure now, not the nearest other colour
            found = cand.hair
            delta = float(ciede2000(found, ref))
        deltas.append(
            PaletteDelta(
                name=colour.name,
                anchor_hex=colour.hex,
                candidate_hex=rgb_hex(lab_to_rgb(found)),
                delta_e=delta,
                share=colour.share,
                passed=delta <= own_limit,
                binding=_binding(colour),
            )
        )
    return PaletteComparison(tuple(deltas), limit)


ADVISORY_CALLOUTS = ("eyes", "accent")


def _binding(colour: PaletteColour) -> bool:
    """Hair, skin and outfit fail the palette check when they drift; eyes and accents advise."""
    return not colour.name.startswith(ADVISORY_CALLOUTS)
