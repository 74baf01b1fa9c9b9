"""The offline scene writer: deterministic, reads the conversation, always carries the kit."""

from __future__ import annotations

import asyncio

from avatar_pipeline.domain.prompts import KitPrompts
from avatar_pipeline.scenes.emotion import Message
from avatar_pipeline.scenes.writer import OfflineSceneWriter, SceneBrief

KIT = KitPrompts("short silver hair, green eyes, navy hoodie", "anime style, cool palette", None)
CHAT = (
    Message("user", "Meet me at the train station after work?"),
    Message("assistant", "*waves from the platform* Over here! I'm so happy you came 😊"),
)


def write(brief: SceneBrief):  # type: ignore[no-untyped-def]
    return asyncio.run(OfflineSceneWriter().write(brief))


def test_the_scene_comes_from_the_conversation_and_carries_the_kit() -> None:
    draft = write(SceneBrief("Kenji", KIT, CHAT))
    assert draft.moment == "Kenji waves from the platform at a train station"
    assert draft.emotion == "joy" and draft.expression == "happy"
    assert draft.emotion_source == "detected"
    for part in (draft.moment, "happy expression", KIT.appearance_prompt, KIT.style_prompt):
        assert part in draft.prompt
    assert draft.basis["action_message"] == 1 and draft.basis["setting_message"] == 0
    assert draft.basis["emotion_reading"]["evidence"][0]["cue"] in ("happy", "😊")
    assert draft == write(SceneBrief("Kenji", KIT, CHAT))  # deterministic


def test_explicit_moment_and_emotion_win() -> None:
    draft = write(SceneBrief("Kenji", KIT, CHAT, moment="reading on a bench", emotion="Anger"))
    assert draft.moment == "reading on a bench" and draft.emotion == "anger"
    assert draft.expression == "angry" and draft.emotion_source == "explicit"
    assert draft.basis["moment_from"] == "request"
    assert KIT.appearance_prompt in draft.prompt and "angry expression" in draft.prompt


def test_a_kit_specific_emotion_tag_selects_the_kits_expression() -> None:
    brief = SceneBrief(
        "Kenji", KIT, CHAT, emotion="nostalgia", kit_emotion_tags={"nostalgia": "pensive"}
    )
    assert write(brief).expression == "pensive"


def test_without_an_action_or_place_the_newest_turn_is_quoted() -> None:
    chat = (Message("user", "What do you think about that?"),)
    draft = write(SceneBrief(None, None, chat))
    assert (
        draft.moment == "the character in conversation, reacting to: What do you think about that?"
    )
    assert draft.prompt == draft.moment  # no kit: nothing else to add
