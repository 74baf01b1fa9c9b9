"""What a model-upgrade canary decided for one kit, slot by slot (written by ``upgrade``, shown
by ``upgrade_report``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class SlotComparison:
    slot: str
    old_asset_id: str | None
    new_asset_id: str | None
    old_model_version: str | None
    new_model_version: str | None
    old_identity: float | None
    new_identity: float | None
    new_passed: bool
    note: str = ""
    new_verdict: str = ""

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class CanaryVerdict:
    kit_id: str
    candidate_set: str | None
    kit_status: str
    promoted: bool
    reason: str
    tolerance: float
    old_mean_identity: float | None = None
    new_mean_identity: float | None = None
    slots: list[SlotComparison] = field(default_factory=list)
    report_json: str | None = None
    report_html: str | None = None

    def as_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k != "slots"}
        data["slots"] = [s.as_dict() for s in self.slots]
        return data
