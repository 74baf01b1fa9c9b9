"""The scene writer: from the episode's recent conversation to the scene prompt and emotion.

Two implementations behind :class:`SceneWriter`: :class:`OfflineSceneWriter` (the embedded
default: a deterministic composer, no network) and ``ReplicateSceneWriter`` (a language model
on Replicate, in ``replicate_writer.py``, which falls back to the offline composer and records
why). Both return a :class:`SceneDraft`: the scene prompt — always composed here with the kit's
appearance and style prompts, whatever wrote the moment — the emotion, the expression it maps
to, and what they were based on. A caller's explicit moment or emotion wins over the writer's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from avatar_pipeline.domain.prompts import KitPrompts, scene_prompt
from avatar_pipeline.domain.vocab import EXPRESSIONS_BY_NAME, expression_for_emotion
from avatar_pipeline.scenes.emotion import EMOTION_LABELS, Message, detect_emotion

MAX_MOMENT_CHARS = 600

# Setting cues of the offline composer: the newest message that names one sets the scene.
SETTINGS: tuple[tuple[str, str], ...] = (
    (r"\b(caf[eé]|coffee shop|latte|coffee)\b", "in a cozy cafe"),
    (r"\b(beach|sea|seaside|ocean)\b", "on a sunny beach"),
    (r"\b(park|picnic)\b", "in a green park"),
    (r"\b(library|books?)\b", "in a quiet library"),
    (r"\b(school|classroom|class|exam)\b", "in a classroom"),
    (r"\b(rain|raining|umbrella)\b", "on a street in the rain"),
    (r"\b(snow|snowing|winter)\b", "outside in falling snow"),
    (r"\b(festival|fireworks|matsuri)\b", "at a summer festival at night"),
    (r"\b(stars|night sky|moon)\b", "under a starry night sky"),
    (r"\b(kitchen|cooking|bake|baking)\b", "in a warm kitchen"),
    (r"\b(train|station)\b", "at a train station"),
    (r"\b(bedroom|bed|sleepy|pillow)\b", "in a cozy bedroom"),
    (r"\b(restaurant|dinner|lunch)\b", "at a restaurant table"),
    (r"\b(garden|flowers)\b", "in a flower garden"),
    (r"\b(concert|stage|guitar)\b", "at a small concert stage"),
    (r"\b(game|match|stadium)\b", "at a sports stadium"),
    (r"\b(office|work|desk)\b", "at an office desk"),
    (r"\b(home|apartment|sofa|couch)\b", "in a living room at home"),
)
_ACTION = re.compile(r"\*([^*\n]{3,160})\*")


@dataclass(frozen=True)
class SceneBrief:
    """What a scene is written from."""

    character_name: str | None
    kit_prompts: KitPrompts | None
    messages: tuple[Message, ...] = ()
    moment: str | None = None  # the caller's explicit moment
    emotion: str | None = None  # the caller's explicit emotion
    # emotion tag -> expression name, from the kit's canonical expression assets' emotion_tags
    kit_emotion_tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def emotion_labels(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*EMOTION_LABELS, *sorted(self.kit_emotion_tags))))


@dataclass(frozen=True)
class SceneDraft:
    """The writer's answer; ``basis`` says what it was based on (stored in the scene)."""

    prompt: str
    moment: str
    emotion: str | None
    emotion_source: str  # "explicit" | "detected" | "language_model" | "none"
    expression: str | None
    writer: str  # "offline" | "replicate"
    basis: dict[str, Any] = field(default_factory=dict)
    fallback_reason: str | None = None

    def as_metadata(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "writer": self.writer,
            "moment": self.moment,
            "emotion": self.emotion,
            "emotion_source": self.emotion_source,
            "expression": self.expression,
            "basis": self.basis,
        }
        if self.fallback_reason:
            data["fallback_reason"] = self.fallback_reason
        return data


class SceneWriter(Protocol):
    name: str

    async def write(self, brief: SceneBrief) -> SceneDraft: ...


def resolve_expression(emotion: str | None, kit_emotion_tags: Mapping[str, str]) -> str | None:
    """The expression that shows ``emotion``: a kit asset tagged with it, else the vocabulary's."""
    if not emotion or not emotion.strip():
        return None
    needle = emotion.strip().lower()
    return kit_emotion_tags.get(needle) or expression_for_emotion(needle)


def compose_prompt(brief: SceneBrief, moment: str, expression: str | None) -> str:
    """The scene prompt: the moment, the expression, then the kit's appearance and style."""
    definition = EXPRESSIONS_BY_NAME.get(expression) if expression else None
    return scene_prompt(brief.kit_prompts, moment, definition)


def clip_moment(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_MOMENT_CHARS else text[: MAX_MOMENT_CHARS - 1] + "…"


def _setting(messages: tuple[Message, ...]) -> tuple[str | None, int | None]:
    for index in range(len(messages) - 1, -1, -1):
        text = messages[index].content.lower()
        for pattern, setting in SETTINGS:
            if re.search(pattern, text):
                return setting, index
    return None, None


def _action(messages: tuple[Message, ...]) -> tuple[str | None, int | None]:
    """The newest roleplay action (``*sips her coffee*``), the character's own lines first."""
    for role in ("assistant", "user"):
        for index in range(len(messages) - 1, -1, -1):
            if messages[index].role != role:
                continue
            found = _ACTION.findall(messages[index].content)
            if found:
                return found[-1].strip(), index
    return None, None


def compose_moment(brief: SceneBrief) -> tuple[str, dict[str, Any]]:
    """The offline composer's moment, deterministic: who, doing what (the newest roleplay
    action), where (the newest setting cue); else a quote of the newest turn."""
    who = brief.character_name or "the character"
    action, action_at = _action(brief.messages)
    setting, setting_at = _setting(brief.messages)
    basis: dict[str, Any] = {"action_message": action_at, "setting_message": setting_at}
    if action or setting:
        parts = [who, action or "in the moment", setting or ""]
        return clip_moment(" ".join(p for p in parts if p)), basis
    if brief.messages:
        last = brief.messages[-1].content.strip()
        basis["quoted_message"] = len(brief.messages) - 1
        return clip_moment(f"{who} in conversation, reacting to: {last[:200]}"), basis
    return f"{who}, a quiet everyday moment", basis


class OfflineSceneWriter:
    """The embedded default: deterministic moment composition and lexicon emotion detection."""

    name = "offline"

    async def write(self, brief: SceneBrief) -> SceneDraft:
        return self.write_now(brief)

    def write_now(self, brief: SceneBrief, *, fallback_reason: str | None = None) -> SceneDraft:
        basis: dict[str, Any] = {"messages": len(brief.messages)}
        if brief.moment and brief.moment.strip():
            moment = clip_moment(brief.moment)
            basis["moment_from"] = "request"
        else:
            moment, composed = compose_moment(brief)
            basis.update(composed, moment_from="conversation")
        if brief.emotion and brief.emotion.strip():
            emotion, source = brief.emotion.strip().lower(), "explicit"
        elif brief.messages:
            reading = detect_emotion(brief.messages)
            emotion, source = reading.emotion, "detected"
            basis["emotion_reading"] = reading.as_dict()
        else:
            emotion, source = None, "none"
        expression = resolve_expression(emotion, brief.kit_emotion_tags)
        return SceneDraft(
            prompt=compose_prompt(brief, moment, expression),
            moment=moment,
            emotion=emotion,
            emotion_source=source,
            expression=expression,
            writer=self.name,
            basis=basis,
            fallback_reason=fallback_reason,
        )


def with_fallback_reason(draft: SceneDraft, reason: str) -> SceneDraft:
    return replace(draft, fallback_reason=reason)
