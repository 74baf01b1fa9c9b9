"""What producing one slot resulted in: the chosen candidate, its scores, its row."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from avatar_pipeline.consistency.types import PASS, UNMEASURED, CheckVerdict, SlotScore
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
    # FAILED/SKIPPED only: "provider" | "safety_refusal" | "budget" | "invalid_request", or
    # "blocked" (skipped: what it derives from failed or was refused in this run)
    failure_kind: str | None = None

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

    @property
    def pending_review(self) -> bool:
        """Stored, not canonical, waiting for a person (a required check was not measured)."""
        return (
            self.has_image
            and not (self.promoted or self.was_canonical)
            and self.score is not None
            and self.score.status == UNMEASURED
        )

    def check_verdicts(self) -> dict[str, CheckVerdict]:
        """Check name -> pass / fail / unmeasured with why, for every check of this slot.

        A slot that produced no image (provider failure, skipped) has nothing to judge: its
        checks are unmeasured, never passed or failed."""
        names = check_names_for(self.slot)
        if self.status in (SlotStatus.SKIPPED, SlotStatus.FAILED):
            why = f"not measured: no image ({self.reason or self.status.value})"
            return {n: CheckVerdict(UNMEASURED, why) for n in names}
        if self.status is SlotStatus.UPLOADED or self.score is None:
            why = self.reason or "manual anchor: defines the identity"
            return {n: CheckVerdict(PASS, why) for n in names}
        return {
            name: self.score.verdicts.get(name)
            or CheckVerdict(UNMEASURED, f"not measured: the {name} check did not run")
            for name in names
        }

    def check_results(self) -> dict[str, tuple[bool, str]]:
        """Check name -> (passed, one-line reason); unmeasured reads as not passed."""
        return {n: (v.passed, v.why) for n, v in self.check_verdicts().items()}


def check_names_for(slot: Slot) -> tuple[str, ...]:
    if slot.asset_type.value == "anchor_portrait":
        return ("identity",)
    if slot.asset_type.value == "anchor_fullbody":
        return ("identity", "not_a_copy", "palette")
    return ("identity", "adherence", "not_a_copy", "palette")
