"""What producing one slot resulted in: the chosen candidate, its scores, its row."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from avatar_pipeline.consistency.types import SlotScore
from avatar_pipeline.generation.slots import Slot


class SlotStatus(StrEnum):
    GENERATED = "generated"  # a new candidate row was written
    REUSED = "reused"  # identical request: the existing row (and cached image) was reused
    UPLOADED = "uploaded"  # a manual upload / imported anchor stands; generation never overwrites
    SKIPPED = "skipped"  # an anchor it derives from failed the gate in this run
    FAILED = "failed"  # provider or budget error; nothing was written


@dataclass
class SlotOutcome:
    slot: Slot
    status: SlotStatus
    asset_id: str | None = None
    storage_bucket: str = "avatars"
    storage_path: str | None = None
    image: bytes | None = None
    score: SlotScore | None = None
    promoted: bool = False
    was_canonical: bool = False
    derived_from_id: str | None = None
    generation: dict[str, Any] = field(default_factory=dict)  # ImageResponse.to_metadata()
    alternatives: list[dict[str, Any]] = field(default_factory=list)  # best-of-N losers
    reason: str | None = None

    @property
    def passed(self) -> bool:
        if self.status is SlotStatus.UPLOADED:
            return True
        if self.status in (SlotStatus.SKIPPED, SlotStatus.FAILED):
            return False
        return self.score is not None and self.score.passed

    @property
    def has_image(self) -> bool:
        return self.image is not None and self.asset_id is not None

    def check_results(self) -> dict[str, tuple[bool, str]]:
        """Check name -> (passed, one-line reason) for every check of this slot."""
        names = check_names_for(self.slot)
        if self.status in (SlotStatus.SKIPPED, SlotStatus.FAILED):
            return {n: (False, self.reason or self.status.value) for n in names}
        if self.status is SlotStatus.UPLOADED or self.score is None:
            return {n: (True, self.reason or "manual anchor: defines the identity") for n in names}
        results: dict[str, tuple[bool, str]] = {}
        for name in names:
            passed = bool(self.score.checks.get(name, True))
            results[name] = (passed, _describe(name, self.score))
        return results


def check_names_for(slot: Slot) -> tuple[str, ...]:
    if slot.asset_type.value == "anchor_portrait":
        return ("identity",)
    if slot.asset_type.value == "anchor_fullbody":
        return ("identity", "not_a_copy")
    return ("identity", "adherence", "not_a_copy")


def _describe(name: str, score: SlotScore) -> str:
    if name == "identity":
        if score.identity is None:
            return "defines the identity (no earlier anchor to compare with)"
        text = f"identity {score.identity:.3f} vs threshold {score.identity_threshold:.3f}"
        note = getattr(score, "notes", {}).get("identity")
        return f"{text}; {note}" if note else text
    if name == "adherence":
        if score.adherence_rank is None:
            return f"no text tower in {score.embedder.kind} embedder: not measured"
        return f"intended label ranked {score.adherence_rank} ({score.adherence_label})"
    if name == "not_a_copy":
        if score.copy_distance is None:
            return "no reference to compare with"
        verdict = "a copy of" if score.is_copy else "differs from"
        return f"phash distance {score.copy_distance}: {verdict} its reference"
    return name
