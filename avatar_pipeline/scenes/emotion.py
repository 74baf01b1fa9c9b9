"""Offline emotion detection: a small lexicon and a few rules over the episode's recent turns.

The labels are the ``emotion_tags`` of the model sheet's expressions (``domain.vocab``), so the
result maps straight to an expression through ``expression_for_emotion``.

Rules, in the order they apply to each message (oldest first):

1. Cues: lexicon words and phrases (``"can't wait"``, ``"miss you"``), emoji and emoticons
   (``:)`` ``;_;``), each with an emotion and a base weight (1.0 for a plain word).
2. Negation: a cue preceded within three words of its clause by a negator (``not``,
   ``never``, ``no``, ``n't``...) does not count for its emotion; half its weight goes to its
   opposite (``not happy`` -> disappointment, ``not angry`` -> calm). Negation and modifiers
   never cross punctuation ("Oh no... I'm sad" is sad). Emoji are never negated.
3. Intensifiers: ``very``/``so``/``really``/``super``... right before a cue multiply it by 1.5;
   softeners (``a bit``, ``slightly``, ``kinda``) by 0.5; a cue written in CAPITALS by 1.3.
4. Exclamation: each ``!`` in the message (at most three) adds 15 % to the message's cues;
   a ``?!`` or ``!?`` adds ``surprise`` 0.5.
5. Recency and speaker: message weights decay by 0.6 per turn back from the newest, and the
   character's own lines (role ``assistant``) count 1.0 against the user's 0.7 — the scene shows
   the character, whose feeling the expression must carry.

The emotion with the highest total wins if it reaches 0.5; otherwise the result is ``neutral``
(a scene is never given a strong expression on weak evidence). Every cue that counted is kept
as evidence, so the scene's metadata says what the emotion was based on.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from avatar_pipeline.domain.vocab import DEFAULT_EXPRESSIONS

# Every label a scene's emotion may take: the emotion_tags of the expression vocabulary.
EMOTION_LABELS: tuple[str, ...] = tuple(
    dict.fromkeys(tag for e in DEFAULT_EXPRESSIONS for tag in e.emotion_tags)
)
MIN_SCORE = 0.5
RECENCY_DECAY = 0.6
SPEAKER_WEIGHT = {"assistant": 1.0, "user": 0.7}
NEGATION_WINDOW = 3

LEXICON: dict[str, tuple[str, float]] = {
    # joy / excitement / amusement
    "happy": ("joy", 1.0),
    "glad": ("joy", 1.0),
    "great": ("joy", 0.6),
    "wonderful": ("joy", 1.0),
    "love it": ("joy", 1.0),
    "yay": ("excitement", 1.0),
    "excited": ("excitement", 1.2),
    "can't wait": ("excitement", 1.2),
    "amazing": ("excitement", 1.0),
    "awesome": ("joy", 0.8),
    "thrilled": ("excitement", 1.2),
    "delighted": ("joy", 1.2),
    "smile": ("joy", 0.6),
    "smiles": ("joy", 0.6),
    "laugh": ("amusement", 1.0),
    "laughs": ("amusement", 1.0),
    "haha": ("amusement", 1.0),
    "hahaha": ("amusement", 1.2),
    "lol": ("amusement", 0.8),
    "funny": ("amusement", 1.0),
    "giggles": ("amusement", 1.0),
    "fun": ("joy", 0.6),
    "congratulations": ("joy", 1.0),
    "celebrate": ("excitement", 1.0),
    # embarrassment / nervousness / flustered-love
    "embarrassed": ("embarrassment", 1.2),
    "embarrassing": ("embarrassment", 1.0),
    "awkward": ("embarrassment", 0.8),
    "shy": ("embarrassment", 1.0),
    "blush": ("surprise_embarrassed", 1.0),
    "blushes": ("surprise_embarrassed", 1.0),
    "blushing": ("surprise_embarrassed", 1.0),
    "nervous": ("nervousness", 1.2),
    "anxious": ("nervousness", 1.2),
    "worried": ("nervousness", 1.0),
    "scared": ("nervousness", 1.0),
    "afraid": ("nervousness", 1.0),
    "fidgets": ("nervousness", 0.8),
    "love you": ("love", 1.5),
    "miss you": ("love", 1.0),
    "adore": ("love", 1.2),
    "crush": ("love", 1.0),
    "kiss": ("love", 1.0),
    "date": ("love", 0.5),
    "cute": ("love", 0.6),
    # sadness / grief / disappointment
    "sad": ("sadness", 1.2),
    "unhappy": ("sadness", 1.0),
    "lonely": ("sadness", 1.0),
    "alone": ("sadness", 0.8),
    "goodbye": ("sadness", 0.8),
    "cry": ("sadness", 1.0),
    "cries": ("sadness", 1.0),
    "crying": ("sadness", 1.0),
    "tears": ("sadness", 1.0),
    "miss": ("sadness", 0.5),
    "hurts": ("sadness", 0.8),
    "died": ("grief", 1.5),
    "passed away": ("grief", 1.5),
    "funeral": ("grief", 1.5),
    "grief": ("grief", 1.5),
    "disappointed": ("disappointment", 1.2),
    "let down": ("disappointment", 1.0),
    "failed": ("disappointment", 0.8),
    "sigh": ("disappointment", 0.6),
    "sighs": ("disappointment", 0.6),
    # anger / annoyance
    "angry": ("anger", 1.2),
    "furious": ("anger", 1.5),
    "hate": ("anger", 1.0),
    "mad": ("anger", 1.0),
    "how dare": ("anger", 1.2),
    "annoyed": ("annoyance", 1.2),
    "annoying": ("annoyance", 1.0),
    "ugh": ("annoyance", 0.8),
    "irritated": ("annoyance", 1.0),
    "frustrated": ("annoyance", 1.0),
    # surprise / shock
    "surprised": ("surprise", 1.2),
    "surprise": ("surprise", 1.0),
    "wow": ("surprise", 1.0),
    "whoa": ("surprise", 1.0),
    "no way": ("surprise", 1.0),
    "unexpected": ("surprise", 0.8),
    "shocked": ("shock", 1.2),
    "gasps": ("shock", 1.0),
    "omg": ("surprise", 0.8),
    # curiosity / confusion
    "curious": ("curiosity", 1.2),
    "wonder": ("curiosity", 0.8),
    "wondering": ("curiosity", 0.8),
    "i wonder": ("curiosity", 1.0),
    "tell me more": ("curiosity", 1.0),
    "hmm": ("curiosity", 0.6),
    "confused": ("confusion", 1.2),
    "confusing": ("confusion", 1.0),
    "don't understand": ("confusion", 1.0),
    "what do you mean": ("confusion", 1.0),
    "puzzled": ("confusion", 1.0),
    # calm
    "calm": ("calm", 1.0),
    "relaxed": ("calm", 1.0),
    "peaceful": ("calm", 1.0),
    "quiet": ("calm", 0.5),
    "cozy": ("calm", 0.8),
    "fine": ("calm", 0.4),
    "okay": ("neutral", 0.3),
}

EMOJI: dict[str, tuple[str, float]] = {
    "😊": ("joy", 1.0),
    "😄": ("joy", 1.2),
    "😁": ("joy", 1.0),
    "🙂": ("joy", 0.6),
    "🥳": ("excitement", 1.2),
    "🎉": ("excitement", 1.0),
    "😂": ("amusement", 1.2),
    "🤣": ("amusement", 1.2),
    "😆": ("amusement", 1.0),
    "😳": ("surprise_embarrassed", 1.2),  # "flushed face": flustered
    "😅": ("nervousness", 0.8),
    "😬": ("nervousness", 1.0),
    "🥰": ("love", 1.2),
    "😍": ("love", 1.2),
    "❤️": ("love", 1.0),
    "❤": ("love", 1.0),
    "💕": ("love", 1.0),
    "😢": ("sadness", 1.2),
    "😭": ("sadness", 1.5),
    "😞": ("disappointment", 1.0),
    "😔": ("sadness", 1.0),
    "😡": ("anger", 1.5),
    "😠": ("anger", 1.2),
    "🙄": ("annoyance", 1.0),
    "😤": ("annoyance", 1.0),
    "😮": ("surprise", 1.2),
    "😲": ("surprise", 1.2),
    "😱": ("shock", 1.5),
    "🤔": ("curiosity", 1.2),
    "😕": ("confusion", 1.0),
    "😌": ("calm", 1.0),
    ":)": ("joy", 0.8),
    ":-)": ("joy", 0.8),
    ":D": ("joy", 1.0),
    ":(": ("sadness", 0.8),
    ":-(": ("sadness", 0.8),
    ";_;": ("sadness", 1.2),
    ">:(": ("anger", 1.0),
    ":o": ("surprise", 0.8),
}

OPPOSITE: dict[str, str] = {
    "joy": "disappointment",
    "surprise_embarrassed": "calm",
    "excitement": "disappointment",
    "amusement": "annoyance",
    "love": "sadness",
    "calm": "nervousness",
    "sadness": "calm",
    "grief": "calm",
    "disappointment": "joy",
    "anger": "calm",
    "annoyance": "calm",
    "nervousness": "calm",
    "embarrassment": "calm",
    "surprise": "calm",
    "shock": "calm",
    "curiosity": "neutral",
    "confusion": "calm",
}

NEGATORS = frozenset(
    {"not", "no", "never", "nothing", "hardly", "without", "isn't", "wasn't", "aren't",
     "don't", "doesn't", "didn't", "can't", "won't", "couldn't", "wouldn't", "ain't", "nor"}
)  # fmt: skip
INTENSIFIERS = frozenset(
    {"very", "so", "really", "extremely", "super", "totally", "incredibly", "truly", "absolutely",
     "soooo", "sooo", "too"}
)  # fmt: skip
SOFTENERS = frozenset({"slightly", "somewhat", "kinda", "kind", "sort", "bit", "little"})

_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")
_CLAUSE = re.compile(r"[.,;:!?…\n]+")
_PHRASES = sorted((k for k in LEXICON if " " in k), key=len, reverse=True)
_SINGLE = {k: v for k, v in LEXICON.items() if " " not in k}


@dataclass(frozen=True)
class Message:
    """One turn of the conversation, as the scene writer sees it."""

    role: str  # "user" | "assistant"
    content: str


@dataclass(frozen=True)
class Cue:
    message_index: int
    cue: str
    emotion: str
    weight: float
    rule: str = "lexicon"

    def as_dict(self) -> dict[str, Any]:
        return {
            "message": self.message_index,
            "cue": self.cue,
            "emotion": self.emotion,
            "weight": round(self.weight, 3),
            "rule": self.rule,
        }


@dataclass(frozen=True)
class EmotionReading:
    emotion: str
    confidence: float  # share of the winning emotion in all evidence (0 when none)
    scores: dict[str, float]
    evidence: tuple[Cue, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        return {
            "emotion": self.emotion,
            "confidence": round(self.confidence, 3),
            "scores": {k: round(v, 3) for k, v in sorted(self.scores.items())},
            "evidence": [c.as_dict() for c in self.evidence],
            "method": "lexicon-v1",
        }


def _words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def _modifier(words: list[str], at: int) -> tuple[float, bool, str]:
    """(multiplier, negated, rule note) from the words just before position ``at``."""
    before = words[max(0, at - NEGATION_WINDOW) : at]
    negated = any(w in NEGATORS or w.endswith("n't") for w in before)
    multiplier, notes = 1.0, []
    if at >= 1 and words[at - 1] in INTENSIFIERS:
        multiplier, notes = 1.5, ["intensified"]
    elif (at >= 1 and words[at - 1] in SOFTENERS) or (at >= 2 and words[at - 2] in SOFTENERS):
        multiplier, notes = 0.5, ["softened"]
    return multiplier, negated, "+".join(notes)


def _clause_cues(index: int, clause: str) -> list[Cue]:
    """Word and phrase cues of one clause (negation and modifiers never cross punctuation:
    "Oh no... I'm sad" is sad)."""
    cues: list[Cue] = []
    words = _words(clause)
    lowered = " " + " ".join(words) + " "
    raw_words = _WORD.findall(clause)
    used: set[int] = set()
    for phrase in _PHRASES:
        for match in re.finditer(rf"(?<= ){re.escape(phrase)}(?= )", lowered):
            at = lowered[: match.start()].count(" ") - 1  # index of the phrase's first word
            span = range(at, at + phrase.count(" ") + 1)
            if used & set(span):
                continue
            used |= set(span)
            cues.extend(_apply(index, phrase, LEXICON[phrase], words, at, raw_words))
    for at, word in enumerate(words):
        if at in used or word not in _SINGLE:
            continue
        cues.extend(_apply(index, word, _SINGLE[word], words, at, raw_words))
    return cues


def _message_cues(index: int, text: str) -> list[Cue]:
    cues: list[Cue] = []
    for clause in _CLAUSE.split(text):
        cues.extend(_clause_cues(index, clause))
    for symbol, (emotion, weight) in EMOJI.items():
        count = text.count(symbol)
        if count:
            cues.append(Cue(index, symbol, emotion, weight * min(count, 3), "emoji"))
    bangs = min(text.count("!"), 3)
    if bangs and cues:
        cues = [Cue(c.message_index, c.cue, c.emotion, c.weight * (1 + 0.15 * bangs),
                    c.rule + "+exclaimed" if c.rule else "exclaimed") for c in cues]  # fmt: skip
    if "?!" in text or "!?" in text:
        cues.append(Cue(index, "?!", "surprise", 0.5, "interrobang"))
    return cues


def _apply(
    index: int, cue: str, entry: tuple[str, float], words: list[str], at: int, raw: list[str]
) -> list[Cue]:
    emotion, weight = entry
    multiplier, negated, note = _modifier(words, at)
    if at < len(raw) and len(raw[at]) > 2 and raw[at].isupper():
        multiplier *= 1.3
        note = f"{note}+caps" if note else "caps"
    weight *= multiplier
    if negated:
        opposite = OPPOSITE.get(emotion)
        if opposite is None:
            return []
        return [Cue(index, f"not {cue}", opposite, weight * 0.5, "negated")]
    return [Cue(index, cue, emotion, weight, note or "lexicon")]


def detect_emotion(messages: Sequence[Message]) -> EmotionReading:
    """The dominant emotion of the conversation's recent turns (see the module's rules)."""
    scores: dict[str, float] = {}
    evidence: list[Cue] = []
    newest = len(messages) - 1
    for index, message in enumerate(messages):
        factor = RECENCY_DECAY ** (newest - index) * SPEAKER_WEIGHT.get(message.role, 0.7)
        for cue in _message_cues(index, message.content):
            weighted = Cue(cue.message_index, cue.cue, cue.emotion, cue.weight * factor, cue.rule)
            scores[cue.emotion] = scores.get(cue.emotion, 0.0) + weighted.weight
            evidence.append(weighted)
    if not scores:
        return EmotionReading("neutral", 0.0, {}, ())
    best = max(sorted(scores), key=lambda e: scores[e])
    total = sum(scores.values())
    if scores[best] < MIN_SCORE:
        return EmotionReading("neutral", 0.0, scores, tuple(evidence))
    kept = tuple(sorted((c for c in evidence if c.emotion == best), key=lambda c: -c.weight))
    return EmotionReading(best, scores[best] / total, scores, kept)
