"""The spec's words as code: kit statuses, asset types, source types, expressions, poses."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class KitStatus(StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    ARCHIVED = "archived"


class AssetType(StrEnum):
    ANCHOR_PORTRAIT = "anchor_portrait"
    ANCHOR_FULLBODY = "anchor_fullbody"
    EXPRESSION = "expression"
    POSE = "pose"
    OUTFIT = "outfit"


class SourceType(StrEnum):
    MANUAL_UPLOAD = "manual_upload"
    AI_GENERATED = "ai_generated"
    IMPORTED = "imported"


@dataclass(frozen=True)
class ExpressionDef:
    """One expression of the model sheet and the emotions that select it."""

    name: str
    emotion_tags: tuple[str, ...]
    prompt: str


@dataclass(frozen=True)
class PoseDef:
    name: str
    prompt: str
    uses_fullbody: bool = True


DEFAULT_EXPRESSIONS: tuple[ExpressionDef, ...] = (
    # Not the portrait anchor again: the anchor wears a soft smile and looks at the viewer.
    ExpressionDef(
        "neutral",
        ("calm", "neutral"),
        "neutral expression, relaxed face, mouth closed, eyes looking slightly aside",
    ),
    ExpressionDef("happy", ("joy", "excitement", "amusement"), "happy expression, bright smile"),
    ExpressionDef("shy", ("embarrassment", "nervousness"), "shy expression, averted eyes"),
    ExpressionDef("flustered", ("surprise_embarrassed", "love"), "flustered expression, blushing"),
    ExpressionDef(
        "sad", ("sadness", "grief", "disappointment"), "sad expression, downturned mouth"
    ),
    ExpressionDef("angry", ("anger", "annoyance"), "angry expression, furrowed brows"),
    ExpressionDef("surprised", ("surprise", "shock"), "surprised expression, wide eyes"),
    ExpressionDef("thinking", ("curiosity", "confusion"), "thinking expression, hand on chin"),
)

DEFAULT_POSES: tuple[PoseDef, ...] = (
    # Not the full-body anchor again: the anchor is the reference stance, arms at the sides.
    PoseDef("standing", "standing pose, relaxed, hands on hips, full body"),
    PoseDef("sitting", "sitting pose, full body"),
    PoseDef("waving", "waving pose, one hand raised, full body"),
    PoseDef("walking", "walking pose, mid-stride, full body"),
)

EXPRESSION_NAMES: tuple[str, ...] = tuple(e.name for e in DEFAULT_EXPRESSIONS)
POSE_NAMES: tuple[str, ...] = tuple(p.name for p in DEFAULT_POSES)
EXPRESSIONS_BY_NAME: dict[str, ExpressionDef] = {e.name: e for e in DEFAULT_EXPRESSIONS}
POSES_BY_NAME: dict[str, PoseDef] = {p.name: p for p in DEFAULT_POSES}

# Slots that must be canonical before a kit may be approved (status -> active).
REQUIRED_SLOTS_FOR_APPROVAL: tuple[AssetType, ...] = (
    AssetType.ANCHOR_PORTRAIT,
    AssetType.ANCHOR_FULLBODY,
)


def expression_for_emotion(emotion: str) -> str:
    """Map a detected emotion to the expression that shows it (spec Phase 4); 'neutral' if none."""
    needle = emotion.strip().lower()
    for expr in DEFAULT_EXPRESSIONS:
        if needle == expr.name or needle in expr.emotion_tags:
            return expr.name
    return "neutral"
