"""Consistency scores of a kit's images: identity, adherence, not-a-copy, and the slot verdict.

- identity: cosine similarity of a candidate's embedding to the primary (portrait) anchor's
  (CLIP-I in the DreamBooth sense when the embedder is CLIP);
- adherence: zero-shot classification with the text tower — softmax over ``100 x cosine`` of
  the image against ``template.format(label)`` for each label of the slot's label set; passes
  when the intended label ranks first (trivially, with a note, when there is no text tower);
- not-a-copy: the candidate is a copy of the image it was derived from when their 64-bit pHash
  hamming distance is within the copy threshold AND no region changed more than a few grey
  levels (an edit that returns its reference unchanged, re-encoded or resized, is not a new
  expression; one that changed only the face keeps the pHash but not the face's pixels).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from threading import Lock

import imagehash
import numpy as np

from avatar_pipeline.consistency.embedders.images import (
    decode_once,
    decode_rgb,
    grey_cells,
    image_sha256,
    phash,
)
from avatar_pipeline.consistency.embedders.thresholds import thresholds_for
from avatar_pipeline.consistency.types import Embedder, SlotScore, Thresholds

EXPRESSION_TEMPLATE = "a picture of a character with a {} expression"
POSE_TEMPLATE = "a picture of a character in a {} pose"
CLIP_LOGIT_SCALE = 100.0
# A re-generated slot may score this much below the canonical image it would replace and
# still count as "at least as consistent" (run-to-run noise of one embedder on one image).
IDENTITY_REGRESSION_TOLERANCE = 0.02

Adherence = tuple[int, dict[str, float]]

__all__ = [
    "CLIP_LOGIT_SCALE",
    "EXPRESSION_TEMPLATE",
    "IDENTITY_REGRESSION_TOLERANCE",
    "POSE_TEMPLATE",
    "CandidateInput",
    "adherence",
    "adherence_batch",
    "best_candidates",
    "identity_scores",
    "is_copy",
    "local_difference",
    "perceptual_copy_distance",
    "score_anchor",
    "score_slots",
    "thresholds_for",
]


@dataclass(frozen=True)
class CandidateInput:
    """One candidate image for a slot (e.g. ``expression:happy``) of a kit."""

    slot: str
    image: bytes
    reference: bytes | None = None  # what it was derived from; None -> the primary anchor
    label: str | None = None  # intended label, e.g. "happy"; None -> no adherence check
    label_set: Sequence[str] | None = None  # labels it competes with (must contain ``label``)
    template: str = EXPRESSION_TEMPLATE  # POSE_TEMPLATE for poses


@dataclass(frozen=True)
class _Fingerprint:
    phash: imagehash.ImageHash
    cells: np.ndarray  # grey_cells()


_FINGERPRINTS: OrderedDict[str, _Fingerprint] = OrderedDict()
_FINGERPRINT_LOCK = Lock()
_FINGERPRINT_MEMO = 512


def _fingerprint(data: bytes) -> _Fingerprint:
    sha = image_sha256(data)
    with _FINGERPRINT_LOCK:
        if sha in _FINGERPRINTS:
            _FINGERPRINTS.move_to_end(sha)
            return _FINGERPRINTS[sha]
    image = decode_rgb(data)
    value = _Fingerprint(phash(image), grey_cells(image))
    with _FINGERPRINT_LOCK:
        _FINGERPRINTS[sha] = value
        if len(_FINGERPRINTS) > _FINGERPRINT_MEMO:
            _FINGERPRINTS.popitem(last=False)
    return value


def perceptual_copy_distance(a: bytes, b: bytes) -> int:
    """Hamming distance between the 64-bit pHashes of two images (0 = same picture)."""
    return int(_fingerprint(a).phash - _fingerprint(b).phash)


def local_difference(a: bytes, b: bytes) -> float:
    """How much the most-changed region differs: the largest mean grey-level difference (0-255)
    over a 16x16 grid. Re-encoded or resized copies stay under 2; edits measured 8 and up."""
    return float(np.abs(_fingerprint(a).cells - _fingerprint(b).cells).max())


def is_copy(
    distance: int,
    threshold: int,
    local: float | None = None,
    local_threshold: float = Thresholds.copy_max_local_difference,
) -> bool:
    """A copy: pHash within ``threshold`` and (when given) no region changed past
    ``local_threshold``."""
    return distance <= threshold and (local is None or local <= local_threshold)


def _cosines(anchor: np.ndarray, rows: np.ndarray) -> list[float]:
    return [float(np.clip(v, -1.0, 1.0)) for v in rows @ anchor]


def identity_scores(embedder: Embedder, anchor: bytes, candidates: list[bytes]) -> list[float]:
    """Cosine similarity of each candidate to the anchor, from one batched embedding call."""
    with decode_once():
        vectors = embedder.embed_images([anchor, *candidates])
    return _cosines(vectors[0], vectors[1:])


def _check_labels(intended: str, labels: Sequence[str]) -> None:
    if intended not in labels:
        raise ValueError(
            f"intended label {intended!r} is not in its label set {list(labels)}; "
            "add it to the set the slot competes with"
        )


def _adherence_from_vectors(
    image_vectors: np.ndarray,
    intended: Sequence[str],
    label_sets: Sequence[Sequence[str]],
    templates: Sequence[str],
    text_vectors: dict[str, np.ndarray],
) -> list[Adherence]:
    results: list[Adherence] = []
    for vector, label, labels, template in zip(
        image_vectors, intended, label_sets, templates, strict=True
    ):
        texts = np.stack([text_vectors[template.format(lab)] for lab in labels])
        logits = CLIP_LOGIT_SCALE * (texts @ vector).astype(np.float64)
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        rank = 1 + int(np.sum(probs > probs[list(labels).index(label)]))
        results.append((rank, {lab: float(p) for lab, p in zip(labels, probs, strict=True)}))
    return results


def _embed_label_texts(
    embedder: Embedder, label_sets: Sequence[Sequence[str]], templates: Sequence[str]
) -> dict[str, np.ndarray]:
    prompts = list(
        dict.fromkeys(
            t.format(lab) for labels, t in zip(label_sets, templates, strict=True) for lab in labels
        )
    )
    if not prompts:
        return {}
    return dict(zip(prompts, embedder.embed_texts(prompts), strict=True))


def adherence_batch(
    embedder: Embedder,
    images: list[bytes],
    intended: Sequence[str],
    label_sets: Sequence[Sequence[str]],
    template: str = EXPRESSION_TEMPLATE,
) -> list[Adherence] | None:
    """(rank of the intended label, label -> probability) per image; None without a text tower."""
    if not embedder.has_text_tower:
        return None
    if not (len(images) == len(intended) == len(label_sets)):
        raise ValueError("images, intended and label_sets must have the same length")
    for label, labels in zip(intended, label_sets, strict=True):
        _check_labels(label, labels)
    templates = [template] * len(images)
    text_vectors = _embed_label_texts(embedder, label_sets, templates)
    image_vectors = embedder.embed_images(images)
    return _adherence_from_vectors(image_vectors, intended, label_sets, templates, text_vectors)


def adherence(
    embedder: Embedder,
    image: bytes,
    intended: str,
    labels: Sequence[str],
    template: str = EXPRESSION_TEMPLATE,
) -> Adherence | None:
    """Zero-shot rank (1 = first) of ``intended`` among ``labels``; None without a text tower."""
    results = adherence_batch(embedder, [image], [intended], [labels], template)
    return None if results is None else results[0]


def score_slots(
    embedder: Embedder,
    *,
    anchor: bytes,
    candidates: list[CandidateInput],
    thresholds: Thresholds | None = None,
    current_canonical_scores: dict[str, float] | None = None,
    regression_tolerance: float = IDENTITY_REGRESSION_TOLERANCE,
) -> list[SlotScore]:
    """Score each candidate against the primary anchor; one result per candidate, in order.

    One batched image-embedding call (anchor + candidates; a CachedEmbedder skips the ones it
    has) and one batched text call. Checks: ``identity`` (>= threshold, and >= the slot's
    current canonical score minus ``regression_tolerance`` when given), ``adherence`` and
    ``not_a_copy``. The anchor itself is scored with :func:`score_anchor`.
    """
    with decode_once():
        return _score_slots(
            embedder,
            anchor,
            candidates,
            thresholds or thresholds_for(embedder.info),
            current_canonical_scores or {},
            regression_tolerance,
        )


def _score_slots(
    embedder: Embedder,
    anchor: bytes,
    candidates: list[CandidateInput],
    thresholds: Thresholds,
    current: dict[str, float],
    regression_tolerance: float,
) -> list[SlotScore]:
    adherence_rows = [i for i, c in enumerate(candidates) if c.label is not None]
    for i in adherence_rows:
        _check_labels(candidates[i].label or "", candidates[i].label_set or ())
    vectors = embedder.embed_images([anchor] + [c.image for c in candidates])
    identities = _cosines(vectors[0], vectors[1:])

    adherences: dict[int, Adherence] = {}
    if embedder.has_text_tower and adherence_rows:
        picked = [candidates[i] for i in adherence_rows]
        sets = [list(c.label_set or ()) for c in picked]
        templates = [c.template for c in picked]
        texts = _embed_label_texts(embedder, sets, templates)
        found = _adherence_from_vectors(
            vectors[[i + 1 for i in adherence_rows]],
            [c.label or "" for c in picked],
            sets,
            templates,
            texts,
        )
        adherences = dict(zip(adherence_rows, found, strict=True))

    results: list[SlotScore] = []
    for i, (candidate, identity) in enumerate(zip(candidates, identities, strict=True)):
        checks: dict[str, bool] = {}
        notes: dict[str, str] = {}
        checks["identity"] = identity >= thresholds.identity_min
        previous = current.get(candidate.slot)
        if previous is not None:
            checks["identity"] = checks["identity"] and identity >= previous - regression_tolerance
            notes["identity"] = (
                f"must also reach the current canonical score {previous:.3f} "
                f"(tolerance {regression_tolerance})"
            )
        rank: int | None = None
        probs: dict[str, float] | None = None
        if candidate.label is None:
            checks["adherence"] = True
            notes["adherence"] = "no intended label for this slot"
        elif i in adherences:
            rank, probs = adherences[i]
            checks["adherence"] = rank == 1
        else:
            checks["adherence"] = True
            notes["adherence"] = f"not scored: {embedder.info.kind} embedder has no text tower"
        reference = candidate.reference if candidate.reference is not None else anchor
        distance = perceptual_copy_distance(candidate.image, reference)
        local = local_difference(candidate.image, reference)
        copied = is_copy(
            distance, thresholds.copy_max_hamming, local, thresholds.copy_max_local_difference
        )
        checks["not_a_copy"] = not copied
        copy_notes = []
        if candidate.reference is None:
            copy_notes.append("compared with the primary anchor (no reference given)")
        if distance <= thresholds.copy_max_hamming:
            copy_notes.append(
                f"largest local change {local:.1f}/255 "
                f"({'a copy' if copied else 'an edit'}: limit "
                f"{thresholds.copy_max_local_difference:g})"
            )
        if copy_notes:
            notes["not_a_copy"] = "; ".join(copy_notes)
        results.append(
            SlotScore(
                identity=identity,
                identity_threshold=thresholds.identity_min,
                adherence_rank=rank,
                adherence_label=candidate.label,
                adherence_probs=probs,
                copy_distance=distance,
                is_copy=copied,
                embedder=embedder.info,
                checks=checks,
                notes=notes,
            )
        )
    return results


def score_anchor(
    embedder: Embedder,
    *,
    anchor: bytes,
    previous_anchor: bytes | None,
    thresholds: Thresholds | None = None,
) -> SlotScore:
    """Identity of a (re-)generated primary anchor against the canonical portrait it replaces.

    A kit's first portrait has nothing to be compared with: its identity check passes with a
    note (art ops approve it by eye).
    """
    thresholds = thresholds or thresholds_for(embedder.info)
    notes = {"adherence": "the primary anchor has no intended label"}
    identity: float | None = None
    if previous_anchor is None:
        notes["identity"] = "first primary anchor of the kit: nothing to compare with"
        passed = True
    else:
        identity = identity_scores(embedder, previous_anchor, [anchor])[0]
        passed = identity >= thresholds.identity_min
        notes["identity"] = "compared with the previous canonical portrait"
    return SlotScore(
        identity=identity,
        identity_threshold=thresholds.identity_min,
        adherence_rank=None,
        adherence_label=None,
        adherence_probs=None,
        copy_distance=None,
        is_copy=False,
        embedder=embedder.info,
        checks={"identity": passed, "adherence": True},
        notes=notes,
    )


def best_candidates(candidates: list[CandidateInput], scores: list[SlotScore]) -> dict[str, int]:
    """Best-of-N: per slot, the index of the passing candidate with the highest identity
    (slots where none passes are absent)."""
    best: dict[str, int] = {}
    for i, (candidate, score) in enumerate(zip(candidates, scores, strict=True)):
        if not score.passed:
            continue
        current = best.get(candidate.slot)
        if current is None or (score.identity or 0.0) > (scores[current].identity or 0.0):
            best[candidate.slot] = i
    return best
