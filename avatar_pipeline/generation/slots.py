"""The slots of a model sheet: two anchors, the expression set and the pose set.

A slot is named ``anchor_portrait``, ``anchor_fullbody``, ``expression:<name>`` or
``pose:<name>`` (the same names as ``catalog.repository.slot_of``); each is one Dagster asset.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from avatar_pipeline.domain import prompts
from avatar_pipeline.domain.vocab import (
    DEFAULT_EXPRESSIONS,
    DEFAULT_POSES,
    EXPRESSIONS_BY_NAME,
    POSES_BY_NAME,
    AssetType,
    ExpressionDef,
    PoseDef,
)

PORTRAIT = "anchor_portrait"
FULLBODY = "anchor_fullbody"


@dataclass(frozen=True)
class Slot:
    name: str
    asset_type: AssetType
    label: str | None = None  # expression or pose name

    @property
    def asset_key_path(self) -> list[str]:
        if self.asset_type is AssetType.EXPRESSION:
            return ["expressions", str(self.label)]
        if self.asset_type is AssetType.POSE:
            return ["poses", str(self.label)]
        return [self.name]

    @property
    def is_anchor(self) -> bool:
        return self.asset_type in (AssetType.ANCHOR_PORTRAIT, AssetType.ANCHOR_FULLBODY)

    @property
    def definition(self) -> ExpressionDef | PoseDef | None:
        if self.asset_type is AssetType.EXPRESSION:
            return EXPRESSIONS_BY_NAME[str(self.label)]
        if self.asset_type is AssetType.POSE:
            return POSES_BY_NAME[str(self.label)]
        return None

    @property
    def definition_hash(self) -> str:
        """Code version of the slot: changes when its prompt definition changes."""
        definition = self.definition
        if definition is None:
            return prompts.definition_hash_of_text(self.name)
        return prompts.definition_hash(definition)

    @property
    def label_set(self) -> list[str] | None:
        """Labels the adherence check ranks the intended label against."""
        if self.asset_type is AssetType.EXPRESSION:
            return [e.name for e in DEFAULT_EXPRESSIONS]
        if self.asset_type is AssetType.POSE:
            return [p.name for p in DEFAULT_POSES]
        return None

    def prompt(self, kit: prompts.KitPrompts) -> str:
        if self.asset_type is AssetType.ANCHOR_PORTRAIT:
            return prompts.portrait_prompt(kit)
        if self.asset_type is AssetType.ANCHOR_FULLBODY:
            return prompts.fullbody_prompt(kit)
        if self.asset_type is AssetType.EXPRESSION:
            return prompts.expression_prompt(kit, EXPRESSIONS_BY_NAME[str(self.label)])
        return prompts.pose_prompt(kit, POSES_BY_NAME[str(self.label)])


PORTRAIT_SLOT = Slot(PORTRAIT, AssetType.ANCHOR_PORTRAIT)
FULLBODY_SLOT = Slot(FULLBODY, AssetType.ANCHOR_FULLBODY)
EXPRESSION_SLOTS: tuple[Slot, ...] = tuple(
    Slot(f"expression:{e.name}", AssetType.EXPRESSION, e.name) for e in DEFAULT_EXPRESSIONS
)
POSE_SLOTS: tuple[Slot, ...] = tuple(
    Slot(f"pose:{p.name}", AssetType.POSE, p.name) for p in DEFAULT_POSES
)
ALL_SLOTS: tuple[Slot, ...] = (PORTRAIT_SLOT, FULLBODY_SLOT, *EXPRESSION_SLOTS, *POSE_SLOTS)
SLOTS_BY_NAME: dict[str, Slot] = {s.name: s for s in ALL_SLOTS}


def slot_named(name: str) -> Slot:
    try:
        return SLOTS_BY_NAME[name]
    except KeyError:
        raise ValueError(
            f"unknown slot {name!r}; expected one of {', '.join(SLOTS_BY_NAME)}"
        ) from None


def seed_for(kit_id: str, slot: str, candidate: int, reroll: int = 0) -> int:
    """Deterministic seed per (kit, slot, candidate, reroll): re-runs hit the image cache."""
    digest = hashlib.sha256(f"{kit_id}:{slot}:{candidate}:{reroll}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF
