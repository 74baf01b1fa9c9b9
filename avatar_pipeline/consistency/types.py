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


@dataclass
class SlotScore:
    """Scores of one candidate image against its kit's primary anchor."""

    identity: float | None
    identity_threshold: float
    adherence_rank: int | None  # 1 = intended label ranked first; None if no text tower
    adherence_label: str | None
    adherence_probs: dict[str, float] | None
    copy_distance: int | None  # phash hamming distance to its reference
    is_copy: bool
    embedder: EmbedderInfo
    checks: dict[str, bool] = field(default_factory=dict)  # check name -> passed
    notes: dict[str, str] = field(default_factory=dict)  # check name -> why it passed trivially

    @property
    def passed(self) -> bool:
        return all(self.checks.values())

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
            "passed": self.passed,
        }
