"""The language-model scene writer: a Replicate model writes the moment and names the emotion.

It runs through the ImageService's Replicate plumbing
(``replicate_text.run_text_prediction``: the same client, token handling, create retries,
polling and cancel-on-timeout) under the same per-process and instance-wide limits as the
image calls (``ProviderLimits``), so scene writing and scene drawing share Replicate's account
budget.

The model is asked for JSON (``{"scene": ..., "emotion": ..., "evidence": ...}``) with the
emotion chosen from the kit's vocabulary. Language models wrap JSON in prose or code fences:
the first JSON object in the answer is taken. Whatever goes wrong — the call fails or times
out, the answer is not JSON, the scene is empty — the offline composer writes the scene instead
and the draft records why (``fallback_reason``); an emotion outside the vocabulary is replaced
by the offline detector's, with a note. The kit's appearance and style are added by
``compose_prompt`` afterwards, never left to the model.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from avatar_pipeline.imaging.limits import ProviderLimits
from avatar_pipeline.imaging.providers.replicate import ReplicateProvider
from avatar_pipeline.imaging.providers.replicate_text import run_text_prediction
from avatar_pipeline.imaging.types import ImageServiceError
from avatar_pipeline.scenes.emotion import detect_emotion
from avatar_pipeline.scenes.writer import (
    OfflineSceneWriter,
    SceneBrief,
    SceneDraft,
    clip_moment,
    compose_prompt,
    resolve_expression,
)

logger = logging.getLogger(__name__)

SYSTEM_PROMPT = (
    "You turn a moment of a conversation between a user and a character into one short scene "
    "description for an image generator, and name the character's emotion in that moment. "
    "Describe where the character is, what they are doing, the light and the mood, in one or "
    "two sentences. Do not describe the character's face, hair, eyes or clothes (they are "
    "fixed elsewhere). Answer with JSON only, no other text: "
    '{"scene": "<scene description>", "emotion": "<one label>", '
    '"evidence": "<the words of the conversation that show the emotion>"}. '
    "The emotion must be exactly one of: {labels}."
)
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)


class UnusableAnswerError(ValueError):
    """The language model's answer has no usable scene."""


def conversation_prompt(brief: SceneBrief) -> str:
    name = brief.character_name or "the character"
    lines = [f"Character: {name}", "Conversation (oldest first):"]
    for message in brief.messages:
        speaker = name if message.role == "assistant" else "user"
        lines.append(f"{speaker}: {message.content.strip()}")
    if brief.moment:
        lines.append(f"The scene to show: {brief.moment.strip()}")
    lines.append("Write the scene of the last moment of this conversation as JSON.")
    return "\n".join(lines)


def parse_answer(text: str) -> dict[str, Any]:
    """The first JSON object in a language model's answer (code fences and prose allowed)."""
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    decoder = json.JSONDecoder()
    for candidate in candidates:
        for start in [m.start() for m in re.finditer(r"\{", candidate)]:
            try:
                value, _ = decoder.raw_decode(candidate[start:])
            except ValueError:
                continue
            if isinstance(value, dict):
                return value
    raise UnusableAnswerError(f"no JSON object in the language model's answer {text[:120]!r}")


class ReplicateSceneWriter:
    """A language model on Replicate writes the scene; the offline composer is its fallback."""

    name = "replicate"

    def __init__(
        self,
        provider: ReplicateProvider,
        limits: ProviderLimits,
        *,
        model: str = "meta/meta-llama-3-8b-instruct",
        timeout_s: float = 30.0,
        max_tokens: int = 300,
        temperature: float = 0.6,
        fallback: OfflineSceneWriter | None = None,
    ) -> None:
        self.provider = provider
        self.limits = limits
        self.model = model
        self.timeout_s = timeout_s
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.fallback = fallback or OfflineSceneWriter()

    def model_input(self, brief: SceneBrief) -> dict[str, Any]:
        return {
            "prompt": conversation_prompt(brief),
            "system_prompt": SYSTEM_PROMPT.replace("{labels}", ", ".join(brief.emotion_labels)),
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
        }

    async def write(self, brief: SceneBrief) -> SceneDraft:
        if brief.moment and brief.emotion:
            return self.fallback.write_now(brief)  # nothing left for a model to write
        if not brief.messages and not brief.moment:
            return self.fallback.write_now(brief, fallback_reason="no conversation to read")
        try:
            async with self.limits.concurrency.slot():
                await self.limits.rate.acquire(1)
                async with self.limits.instance_slot(1):
                    prediction = await run_text_prediction(
                        self.provider, self.model, self.model_input(brief), timeout_s=self.timeout_s
                    )
            answer = parse_answer(prediction.text)
            return self._draft(brief, answer, prediction.to_metadata())
        except (ImageServiceError, UnusableAnswerError) as exc:
            reason = f"{type(exc).__name__}: {exc}"[:500]
            logger.warning("scene writer %s failed (%s); the offline composer writes", self.model,
                           reason)  # fmt: skip
            return self.fallback.write_now(brief, fallback_reason=reason)

    def _draft(self, brief: SceneBrief, answer: dict[str, Any], call: dict[str, Any]) -> SceneDraft:
        basis: dict[str, Any] = {"messages": len(brief.messages), "language_model": call}
        scene = answer.get("scene")
        if brief.moment and brief.moment.strip():
            moment = clip_moment(brief.moment)
            basis["moment_from"] = "request"
        elif isinstance(scene, str) and scene.strip():
            moment = clip_moment(scene)
            basis["moment_from"] = "language_model"
        else:
            raise UnusableAnswerError(f"the answer has no scene: {json.dumps(answer)[:200]}")
        evidence = answer.get("evidence")
        if isinstance(evidence, str) and evidence.strip():
            basis["evidence"] = evidence.strip()[:300]
        said = answer.get("emotion")
        if brief.emotion and brief.emotion.strip():
            emotion, source = brief.emotion.strip().lower(), "explicit"
        elif isinstance(said, str) and said.strip().lower() in brief.emotion_labels:
            emotion, source = said.strip().lower(), "language_model"
        else:
            reading = detect_emotion(brief.messages)
            emotion, source = reading.emotion, "detected"
            basis["emotion_reading"] = reading.as_dict()
            basis["emotion_note"] = (
                f"the language model's emotion {said!r} is not in the vocabulary; "
                "detected offline instead"
            )
        expression = resolve_expression(emotion, brief.kit_emotion_tags)
        return SceneDraft(
            prompt=compose_prompt(brief, moment, expression),
            moment=moment,
            emotion=emotion,
            emotion_source=source,
            expression=expression,
            writer=f"{self.name}:{self.model}",
            basis=basis,
        )
