"""The language-model side of the fake Replicate server (``meta/meta-llama-3-8b-instruct``).

Replicate's language models stream: a finished prediction's ``output`` is the list of text
chunks the model produced (``x-cog-array-type: iterator``, displayed concatenated), each chunk a
token with its leading space. Instruction-tuned models also rarely answer with bare JSON: they
open with a sentence and fence the JSON in a code block. The default reply reproduces both.

The default reply reads the conversation the way a model would see it — as text — with a few
keywords of its own (deliberately not the offline detector's lexicon); tests that need a
particular answer set ``FakeReplicateServer.language_reply``.
"""

from __future__ import annotations

import json
import re
from typing import Any

LANGUAGE_MODELS = ("meta/meta-llama-3-8b-instruct",)

_MOODS = (
    ("sadness", ("lost", "goodbye", "alone", "rain")),
    ("excitement", ("won", "tickets", "finally", "tomorrow")),
    ("embarrassment", ("compliment", "pretty", "stare")),
    ("curiosity", ("why", "how", "secret")),
)
_PLACES = ("station", "rooftop", "cafe", "beach", "library", "park", "kitchen")


def stream_chunks(text: str) -> list[str]:
    """Split an answer into token-like chunks, as a streaming model emits them."""
    return re.findall(r"\s*\S+", text) or [text]


def default_language_reply(model_input: dict[str, Any]) -> str:
    """A chatty answer with the JSON in a code fence, derived from the last lines of the
    conversation in the prompt."""
    prompt = str(model_input.get("prompt", ""))
    turns = [line.split(":", 1)[1].strip() for line in prompt.splitlines() if ": " in line]
    last = (turns[-1] if turns else prompt).lower()
    emotion = next((m for m, words in _MOODS if any(w in last for w in words)), "calm")
    place = next((p for p in _PLACES if p in prompt.lower()), "quiet room")
    answer = {
        "scene": f"standing in a {place}, soft evening light, the moment after: {last[:80]}",
        "emotion": emotion,
        "evidence": last[:60],
    }
    return "Sure! Here is the scene you asked for:\n\n```json\n" + json.dumps(answer) + "\n```\n"
