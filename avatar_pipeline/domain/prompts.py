"""Prompt composition for each slot of the model sheet, and the hashes sensors watch."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from avatar_pipeline.domain.vocab import ExpressionDef, PoseDef

MAX_PROMPT_CHARS = 2000


class InvalidPromptError(ValueError):
    """A prompt is empty, too long or otherwise unusable."""


@dataclass(frozen=True)
class KitPrompts:
    """The visual contract text of a kit (the three prompt columns of ``avatar_kits``)."""

    appearance_prompt: str
    style_prompt: str
    negative_prompt: str | None = None

    def validate(self) -> KitPrompts:
        for field_name in ("appearance_prompt", "style_prompt"):
            value = getattr(self, field_name)
            if not value or not value.strip():
                raise InvalidPromptError(f"{field_name} must not be empty")
        for field_name in ("appearance_prompt", "style_prompt", "negative_prompt"):
            value = getattr(self, field_name) or ""
            if len(value) > MAX_PROMPT_CHARS:
                raise InvalidPromptError(
                    f"{field_name} is {len(value)} characters; the limit is {MAX_PROMPT_CHARS}"
                )
            if "\x00" in value:
                raise InvalidPromptError(f"{field_name} contains a NUL character")
        return self

    @property
    def prompt_hash(self) -> str:
        """Hash of the three prompts; a change means the kit must be re-generated."""
        payload = json.dumps(
            [self.appearance_prompt, self.style_prompt, self.negative_prompt or ""],
            ensure_ascii=False,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _join(*parts: str | None) -> str:
    return ", ".join(p.strip().rstrip(".,") for p in parts if p and p.strip())


def portrait_prompt(kit: KitPrompts) -> str:
    """Text-to-image prompt for the primary (portrait) anchor: the model sheet's front view
    with a soft closed-mouth smile, so the neutral expression is a different picture."""
    return _join(
        "character model sheet, portrait, shoulders up, front view, facing viewer, "
        "gentle closed-mouth smile, plain background",
        kit.appearance_prompt,
        kit.style_prompt,
    )


def fullbody_prompt(kit: KitPrompts) -> str:
    """Edit prompt that turns the portrait anchor into the full-body anchor: the model sheet's
    reference stance (turnaround style), which no pose of the sheet repeats."""
    return _join(
        "the same character, full body, standing straight, arms relaxed at the sides, "
        "front view, head to toe, plain background, "
        "keep the face, hair, eye colour and outfit exactly",
        kit.appearance_prompt,
        kit.style_prompt,
    )


def expression_prompt(kit: KitPrompts, expression: ExpressionDef) -> str:
    return _join(
        f"the same character, portrait, shoulders up, {expression.prompt}, "
        "keep the face, hair, eye colour and outfit exactly",
        kit.appearance_prompt,
        kit.style_prompt,
    )


def pose_prompt(kit: KitPrompts, pose: PoseDef) -> str:
    return _join(
        f"the same character, {pose.prompt}, keep the face, hair, eye colour and outfit exactly",
        kit.appearance_prompt,
        kit.style_prompt,
    )


def scene_prompt(kit: KitPrompts | None, moment: str, expression: ExpressionDef | None) -> str:
    """Scene prompt for the scene flow: includes the kit's appearance when a kit exists."""
    if not moment or not moment.strip():
        raise InvalidPromptError("scene moment must not be empty")
    if kit is None:
        return _join(moment)
    return _join(
        moment,
        expression.prompt if expression else None,
        kit.appearance_prompt,
        kit.style_prompt,
    )


def definition_hash(definition: ExpressionDef | PoseDef) -> str:
    """Hash of one expression/pose definition; a change re-generates that slot only."""
    return hashlib.sha256(repr(definition).encode()).hexdigest()[:16]


def definition_hash_of_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]
