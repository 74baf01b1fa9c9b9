"""The offline emotion detector's documented rules, and conversations it was not tuned on."""

from __future__ import annotations

import pytest

from avatar_pipeline.domain.vocab import DEFAULT_EXPRESSIONS, expression_for_emotion
from avatar_pipeline.scenes.emotion import EMOTION_LABELS, Message, detect_emotion


def said(*lines: str) -> list[Message]:
    """Alternating user / assistant turns, user first."""
    return [Message("user" if i % 2 == 0 else "assistant", t) for i, t in enumerate(lines)]


def test_every_label_maps_to_an_expression() -> None:
    neutral_tags = next(e.emotion_tags for e in DEFAULT_EXPRESSIONS if e.name == "neutral")
    for label in EMOTION_LABELS:
        assert expression_for_emotion(label) != "neutral" or label in neutral_tags


def test_negation_turns_a_cue_to_its_opposite() -> None:
    assert detect_emotion([Message("assistant", "I am happy.")]).emotion == "joy"
    negated = detect_emotion([Message("assistant", "I am not happy about this at all.")])
    assert negated.emotion != "joy"
    assert negated.evidence and negated.evidence[0].rule == "negated"
    assert detect_emotion([Message("assistant", "I'm not angry with you.")]).emotion == "calm"


def test_intensifiers_softeners_and_capitals_scale_a_cue() -> None:
    plain = detect_emotion([Message("assistant", "I am sad")]).scores["sadness"]
    very = detect_emotion([Message("assistant", "I am very sad")]).scores["sadness"]
    bit = detect_emotion([Message("assistant", "I am a bit sad")]).scores["sadness"]
    caps = detect_emotion([Message("assistant", "I am SAD")]).scores["sadness"]
    assert bit < plain < caps < very


def test_emoji_and_emoticons_count_and_are_never_negated() -> None:
    assert detect_emotion([Message("assistant", "no 😭")]).emotion == "sadness"
    assert detect_emotion([Message("user", "see you there :D")]).emotion == "joy"


def test_recency_the_newest_turn_wins() -> None:
    conversation = said(
        "We won the match, I'm so happy!",
        "That's wonderful!",
        "But then my dog died on the way home.",
        "Oh no... I'm so sorry 😢",
    )
    reading = detect_emotion(conversation)
    assert reading.emotion in ("sadness", "grief")
    assert reading.scores["joy"] > 0  # the older joy still counted, for less


def test_the_characters_own_line_outweighs_the_users() -> None:
    conversation = [Message("assistant", "That is so annoying."), Message("user", "I'm happy.")]
    both = detect_emotion(conversation)
    # equal base weights: the user's newer line decays nothing, the character's counts fully
    assert both.scores["joy"] == pytest.approx(0.7)
    assert both.scores["annoyance"] == pytest.approx(1.5 * 0.6)


def test_weak_or_no_evidence_is_neutral() -> None:
    assert detect_emotion(said("ok, see you at six", "okay")).emotion == "neutral"
    assert detect_emotion([]).emotion == "neutral"


@pytest.mark.parametrize(
    ("conversation", "expression"),
    [
        (said("I got the job!!", "No way, that's AMAZING! Let's celebrate 🎉"), "happy"),
        (said("you look really cute today", "*blushes* w-what... stop it 😳"), "flustered"),
        (said("The test results came back.", "Wait, what?! I'm shocked 😱"), "surprised"),
        (said("Why is the sky red tonight?", "Hmm, I wonder... I'm curious too 🤔"), "thinking"),
        (said("He cancelled again.", "Ugh. So frustrated and annoyed 😤"), "angry"),
        (said("Do you want to come up on stage?", "I... I'm so nervous, everyone is looking"),
         "shy"),
        (said("I miss you", "I miss you too... it's lonely without you 😔"), "sad"),
        (said("Rain outside, tea inside.", "Mm. Cozy and peaceful here 😌"), "neutral"),
    ],
)  # fmt: skip
def test_conversations_map_to_the_expected_expression(
    conversation: list[Message], expression: str
) -> None:
    assert expression_for_emotion(detect_emotion(conversation).emotion) == expression
