"""Consistency scores of a kit's images: identity, adherence, not-a-copy, palette, the verdict.

Every check ends in a :class:`~avatar_pipeline.consistency.types.CheckVerdict`: pass, fail or
*unmeasured* (never counted as a pass; an image with an unmeasured required check waits for a
person, see ``AVATAR_UNMEASURED_POLICY``).

- identity: cosine similarity of a candidate's embedding to the primary (portrait) anchor's
  (CLIP-I in the DreamBooth sense when the embedder is CLIP);
- adherence: zero-shot classification with the text tower — softmax over ``100 x cosine`` of
  the image against ``template.format(label)`` for each label of the slot's label set; passes
  when the intended label ranks first; *unmeasured* when the embedder has no text tower;
- not-a-copy (:mod:`avatar_pipeline.consistency.copies`): the candidate against every
  reference it was made from, the primary anchor and its siblings (the kit's other images of
  the same kind), after alignment; a copy when too little of the character changed;
- palette (:mod:`avatar_pipeline.consistency.palette`): each colour of the kit's palette
  contract found again within CIEDE2000 ``PALETTE_MAX_DELTA_E``; the verdict names drifted
  colours ("hair ΔE 23 (#1b1a22 → #6b3b22)").
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from threading import Lock
from typing import Any

import imagehash
import numpy as np

from avatar_pipeline.consistency.copies import CopyVerdict, find_copy
from avatar_pipeline.consistency.embedders.images import (
    decode_once,
    decode_rgb,
    grey_cells,
    image_sha256,
    phash,
)
from avatar_pipeline.consistency.embedders.thresholds import thresholds_for
from avatar_pipeline.consistency.types import (
    FAIL,
    PASS,
    UNMEASURED,
    CheckVerdict,
    Embedder,
    SlotScore,
    Thresholds,
)

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
    "copy_verdict",
    "identity_scores",
    "is_copy",
    "local_difference",
    "palette_verdict",
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
    # Every reference the call was given, labelled (e.g. ("reference 1: anchor_portrait", b)):
    # the copy check compares with all of them; empty -> ``reference`` alone.
    references: Sequence[tuple[str, bytes]] = ()
    # The kit's other images of the same kind (siblings of this run, canonical ones).
    siblings: Sequence[tuple[str, bytes]] = ()

    def copy_targets(self, anchor: bytes) -> list[tuple[str, bytes]]:
        """What this candidate must not be a copy of: its references, the primary anchor and
        its siblings (each image once)."""
        targets = list(self.references)
        if not targets and self.reference is not None:
            targets.append(("reference", self.reference))
        targets.append(("primary anchor", anchor))
        targets.extend(self.siblings)
        return targets


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
    palette_contract: Mapping[str, Any] | None = None,
) -> list[SlotScore]:
    """Score each candidate against the primary anchor; one result per candidate, in order.

    One batched image-embedding call (anchor + candidates; a CachedEmbedder skips the ones it
    has) and one batched text call. Checks: ``identity`` (>= threshold, and >= the slot's
    current canonical score minus ``regression_tolerance`` when given), ``adherence`` (only
    for candidates with an intended label; unmeasured without a text tower), ``not_a_copy``
    and, when the kit's ``palette_contract`` is given, ``palette``. The anchor itself is
    scored with :func:`score_anchor`.
    """
    with decode_once():
        return _score_slots(
            embedder,
            anchor,
            candidates,
            thresholds or thresholds_for(embedder.info),
            current_canonical_scores or {},
            regression_tolerance,
            palette_contract,
        )


def _score_slots(
    embedder: Embedder,
    anchor: bytes,
    candidates: list[CandidateInput],
    thresholds: Thresholds,
    current: dict[str, float],
    regression_tolerance: float,
    palette_contract: Mapping[str, Any] | None = None,
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
        verdicts: dict[str, CheckVerdict] = {}
        verdicts["identity"] = _identity_verdict(
            identity, thresholds.identity_min, current.get(candidate.slot), regression_tolerance
        )
        rank: int | None = None
        probs: dict[str, float] | None = None
        if candidate.label is not None:
            if i in adherences:
                rank, probs = adherences[i]
                verdicts["adherence"] = CheckVerdict(
                    PASS if rank == 1 else FAIL,
                    _adherence_why(candidate.label, rank, probs),
                )
            else:
                verdicts["adherence"] = CheckVerdict(
                    UNMEASURED,
                    f"not measured: the {embedder.info.kind} embedder has no text tower, so "
                    f"nothing checked that this shows {candidate.label!r} "
                    "(CLIP weights measure it: avatar-pipeline models pull)",
                )
        copy = copy_verdict(candidate.image, candidate.copy_targets(anchor), thresholds)
        verdicts["not_a_copy"] = _copy_check(copy, thresholds)
        distance = (
            perceptual_copy_distance(candidate.image, _image_of(candidate, anchor, copy))
            if copy is not None
            else None
        )
        palette: dict[str, Any] | None = None
        if palette_contract is not None:
            verdicts["palette"], palette = palette_verdict(palette_contract, candidate.image)
        results.append(
            SlotScore(
                identity=identity,
                identity_threshold=thresholds.identity_min,
                adherence_rank=rank,
                adherence_label=candidate.label,
                adherence_probs=probs,
                copy_distance=distance,
                is_copy=bool(copy and copy.is_copy),
                embedder=embedder.info,
                verdicts=verdicts,
                copy=copy.as_dict() if copy is not None else None,
                palette=palette,
            )
        )
    return results


def _identity_verdict(
    identity: float, threshold: float, previous: float | None, tolerance: float
) -> CheckVerdict:
    ok = identity >= threshold
    why = f"identity {identity:.3f} {'>=' if ok else '<'} threshold {threshold:.3f}"
    if previous is not None:
        keeps = identity >= previous - tolerance
        ok = ok and keeps
        why += (
            f"; must also reach the current canonical score {previous:.3f} "
            f"(tolerance {tolerance}): {'it does' if keeps else 'it does not'}"
        )
    return CheckVerdict(PASS if ok else FAIL, why)


def _adherence_why(label: str, rank: int, probs: dict[str, float] | None) -> str:
    if rank == 1:
        return f"{label!r} ranked first among the slot's labels"
    top = max(probs or {}, key=lambda k: (probs or {})[k], default="?")
    return f"{label!r} ranked {rank}; the image reads as {top!r}"


def copy_verdict(
    image: bytes, targets: Sequence[tuple[str, bytes]], thresholds: Thresholds
) -> CopyVerdict | None:
    """The not-a-copy comparison of ``image`` with each labelled target (None: no targets)."""
    if not targets:
        return None
    return find_copy(image, targets, thresholds.copy_max_changed_fraction)


def _copy_check(copy: CopyVerdict | None, thresholds: Thresholds) -> CheckVerdict:
    if copy is None:
        return CheckVerdict(UNMEASURED, "not measured: nothing to compare with")
    return CheckVerdict(FAIL if copy.is_copy else PASS, copy.why)


def _image_of(candidate: CandidateInput, anchor: bytes, copy: CopyVerdict) -> bytes:
    """The image the closest comparison was made with (for the legacy pHash distance)."""
    label = copy.closest.against if copy.closest else "primary anchor"
    return dict(candidate.copy_targets(anchor)).get(label, anchor)


def palette_verdict(
    contract: Mapping[str, Any], image: bytes, max_delta_e: float | None = None
) -> tuple[CheckVerdict, dict[str, Any] | None]:
    """The palette check of ``image`` against the kit's contract, and its per-colour deltas."""
    from avatar_pipeline.consistency.palette import compare_palette

    try:
        comparison = compare_palette(contract, image, max_delta_e)
    except ValueError as exc:
        return CheckVerdict(UNMEASURED, f"not measured: {exc}"), None
    if not comparison.measured:
        return CheckVerdict(UNMEASURED, comparison.verdict), comparison.as_dict()
    verdict = PASS if comparison.passed else FAIL
    return CheckVerdict(verdict, comparison.verdict), comparison.as_dict()


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
    identity: float | None = None
    if previous_anchor is None:
        verdict = CheckVerdict(
            PASS,
            "defines the kit's identity: the first primary anchor has nothing to be compared "
            "with (a person approves it with the kit)",
        )
    else:
        identity = identity_scores(embedder, previous_anchor, [anchor])[0]
        ok = identity >= thresholds.identity_min
        verdict = CheckVerdict(
            PASS if ok else FAIL,
            f"identity {identity:.3f} {'>=' if ok else '<'} threshold "
            f"{thresholds.identity_min:.3f}, compared with the previous canonical portrait",
        )
    return SlotScore(
        identity=identity,
        identity_threshold=thresholds.identity_min,
        adherence_rank=None,
        adherence_label=None,
        adherence_probs=None,
        copy_distance=None,
        is_copy=False,
        embedder=embedder.info,
        verdicts={"identity": verdict},
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
