"""Shared shapes of the consistency layer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np


@dataclass(frozen=True)
class EmbedderInfo:
    """Which embedder, model and weights produced a score (recorded with every score)."""

    kind: str  # "clip" | "perceptual"
    model: str  # e.g. "ViT-B-32" or "phash+colorhash+stats-v1"
    weights: str  # pretrained tag, checkpoint path, or "none"

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "model": self.model, "weights": self.weights}


class Embedder(Protocol):
    info: EmbedderInfo

    @property
    def has_text_tower(self) -> bool: ...

    def embed_images(self, images: list[bytes]) -> np.ndarray:
        """L2-normalised embeddings, one row per image."""

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        """L2-normalised text embeddings (only when has_text_tower)."""


@dataclass(frozen=True)
class Thresholds:
    identity_min: float  # cosine similarity to the primary anchor
    copy_max_hamming: int  # phash distance at or below which a derived image is "a copy"
    # ...and only if no region changed more than this (mean grey-level difference, 0-255, of
    # the most-changed cell of a 16x16 grid): an expression edit keeps the pHash but not the face
    copy_max_local_difference: float = 4.0
    # not-a-copy (consistency.copies): a copy changed less than this share of the character
    # after alignment; 0 disables the check (nothing changes less than nothing)
    copy_max_changed_fraction: float = 0.01


PASS = "pass"
FAIL = "fail"
UNMEASURED = "unmeasured"
VERDICTS = (PASS, FAIL, UNMEASURED)


@dataclass(frozen=True)
class CheckVerdict:
    """The honest result of one check: it passed, it failed, or it could not be measured.

    ``why`` is one line in words a person can act on ("hair ΔE 23 (#1b1a22 -> #6b3b22)",
    "no text tower in the perceptual embedder"). An unmeasured check is never a pass.
    """

    verdict: str  # PASS | FAIL | UNMEASURED
    why: str = ""
    required: bool = True  # an unmeasured required check keeps the image from auto-promotion

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, not {self.verdict!r}")

    @property
    def passed(self) -> bool:
        return self.verdict == PASS

    @property
    def failed(self) -> bool:
        return self.verdict == FAIL

    @property
    def unmeasured(self) -> bool:
        return self.verdict == UNMEASURED

    def as_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "why": self.why, "required": self.required}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckVerdict:
        return cls(str(data["verdict"]), str(data.get("why", "")), bool(data.get("required", True)))


def verdicts_from_dict(data: dict[str, Any]) -> dict[str, CheckVerdict]:
    """Verdicts of a stored ``SlotScore.as_dict()``; older records (``checks`` only) read as
    pass/fail from their booleans."""
    if data.get("verdicts"):
        return {k: CheckVerdict.from_dict(v) for k, v in data["verdicts"].items()}
    notes = data.get("notes") or {}
    return {
        k: CheckVerdict(PASS if ok else FAIL, str(notes.get(k, "")))
        for k, ok in (data.get("checks") or {}).items()
    }


def status_of(verdicts: dict[str, CheckVerdict]) -> str:
    """ "fail" if any check failed; else "unmeasured" if a required check was not measured;
    else "pass" (the image may become canonical without a person)."""
    if any(v.failed for v in verdicts.values()):
        return FAIL
    if any(v.unmeasured and v.required for v in verdicts.values()):
        return UNMEASURED
    return PASS


@dataclass
class SlotScore:
    """Scores of one candidate image against its kit's primary anchor.

    ``verdicts`` is the source of truth: check name -> pass / fail / unmeasured with why.
    ``checks`` (name -> bool, True only for a pass) and ``notes`` are kept for older callers;
    a SlotScore built from ``checks`` alone reads True as pass and False as fail.
    """

    identity: float | None
    identity_threshold: float
    adherence_rank: int | None  # 1 = intended label ranked first; None if no text tower
    adherence_label: str | None
    adherence_probs: dict[str, float] | None
    copy_distance: int | None  # phash hamming distance to its reference
    is_copy: bool
    embedder: EmbedderInfo
    checks: dict[str, bool] = field(default_factory=dict)  # check name -> passed
    notes: dict[str, str] = field(default_factory=dict)  # check name -> why
    verdicts: dict[str, CheckVerdict] = field(default_factory=dict)
    copy: dict[str, Any] | None = None  # not-a-copy detail (consistency.copies)
    palette: dict[str, Any] | None = None  # palette deltas (consistency.palette)

    def __post_init__(self) -> None:
        if not self.verdicts:
            self.verdicts = {
                k: CheckVerdict(PASS if ok else FAIL, self.notes.get(k, ""))
                for k, ok in self.checks.items()
            }
        self.checks = {k: v.passed for k, v in self.verdicts.items()}
        for name, v in self.verdicts.items():
            if v.why:
                self.notes.setdefault(name, v.why)

    @property
    def status(self) -> str:
        return status_of(self.verdicts)

    @property
    def passed(self) -> bool:
        """May become canonical automatically: every check measured and passed."""
        return self.status == PASS

    @property
    def failed(self) -> bool:
        return self.status == FAIL

    @property
    def unmeasured(self) -> list[str]:
        """Names of required checks that could not be measured."""
        return [k for k, v in self.verdicts.items() if v.unmeasured and v.required]

    def verdict(self, name: str) -> CheckVerdict | None:
        return self.verdicts.get(name)

    def as_dict(self) -> dict[str, Any]:
        return {
            "identity": self.identity,
            "identity_threshold": self.identity_threshold,
            "adherence_rank": self.adherence_rank,
            "adherence_label": self.adherence_label,
            "adherence_probs": self.adherence_probs,
            "copy_distance": self.copy_distance,
            "is_copy": self.is_copy,
            "embedder": self.embedder.as_dict(),
            "checks": dict(self.checks),
            "notes": dict(self.notes),
            "verdicts": {k: v.as_dict() for k, v in self.verdicts.items()},
            "status": self.status,
            "passed": self.passed,
            **({"copy": self.copy} if self.copy is not None else {}),
            **({"palette": self.palette} if self.palette is not None else {}),
        }
