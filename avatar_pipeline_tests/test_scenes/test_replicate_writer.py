"""The language-model scene writer on the fake Replicate server, through the real client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from avatar_pipeline.domain.prompts import KitPrompts
from avatar_pipeline.imaging.limits import shared_limits
from avatar_pipeline.imaging.providers.replicate import ReplicateProvider
from avatar_pipeline.imaging.service import ImageService
from avatar_pipeline.scenes.emotion import Message
from avatar_pipeline.scenes.factory import build_scene_writer
from avatar_pipeline.scenes.replicate_writer import ReplicateSceneWriter, parse_answer
from avatar_pipeline.scenes.writer import SceneBrief, SceneDraft
from avatar_pipeline.settings import Settings
from avatar_pipeline_tests.fakes.replicate_server import (
    FAILED,
    NEVER_FINISHES,
    SERVER_ERROR,
    FakeReplicateServer,
    Fault,
)

LLM = "meta/meta-llama-3-8b-instruct"
KIT = KitPrompts("young woman, long red hair, amber eyes", "watercolor style", None)
CHAT = (
    Message("user", "I have to move away next month. This is our last evening at the rooftop."),
    Message("assistant", "So this is goodbye... I'll be alone up here."),
)


def writer_on(provider: ReplicateProvider, **options: Any) -> ReplicateSceneWriter:
    return ReplicateSceneWriter(provider, shared_limits("replicate", 4, 600), **options)


def write(writer: ReplicateSceneWriter, brief: SceneBrief) -> SceneDraft:
    async def run() -> SceneDraft:
        try:
            return await writer.write(brief)
        finally:
            await writer.provider.aclose()

    return asyncio.run(run())


def test_the_language_model_writes_the_scene_and_names_the_emotion(
    fake_replicate: FakeReplicateServer, make_provider: Callable[..., ReplicateProvider]
) -> None:
    draft = write(writer_on(make_provider()), SceneBrief("Aiko", KIT, CHAT))

    [create] = fake_replicate.creates()
    assert create.path == f"/v1/models/{LLM}/predictions" and create.authorized
    sent = create.body["input"]
    assert "Aiko: So this is goodbye... I'll be alone up here." in sent["prompt"]
    assert "user: I have to move away next month." in sent["prompt"]
    assert "sadness" in sent["system_prompt"] and "surprise_embarrassed" in sent["system_prompt"]
    assert fake_replicate.token not in json.dumps(create.body)
    # the fake streamed its answer in chunks, wrapped in prose and a code fence
    assert len(fake_replicate.predictions[create.prediction_id].text or []) > 10

    assert draft.writer == f"replicate:{LLM}" and draft.fallback_reason is None
    assert draft.moment.startswith("standing in a rooftop, soft evening light")
    assert draft.emotion == "sadness" and draft.emotion_source == "language_model"
    assert draft.expression == "sad"
    assert draft.prompt.startswith(draft.moment.rstrip("."))
    assert KIT.appearance_prompt in draft.prompt and KIT.style_prompt in draft.prompt
    assert "sad expression" in draft.prompt
    call = draft.basis["language_model"]
    assert call["model"] == LLM and call["create_attempts"] == 1 and call["prediction_id"]
    assert draft.basis["evidence"].startswith("so this is goodbye")


def test_a_create_failure_is_retried_like_an_image_call(
    fake_replicate: FakeReplicateServer, make_provider: Callable[..., ReplicateProvider]
) -> None:
    fake_replicate.schedule(SERVER_ERROR)
    draft = write(writer_on(make_provider()), SceneBrief("Aiko", KIT, CHAT))
    assert draft.fallback_reason is None
    assert draft.basis["language_model"]["create_attempts"] == 2


def test_a_failed_prediction_falls_back_to_the_offline_writer_with_the_reason(
    fake_replicate: FakeReplicateServer, make_provider: Callable[..., ReplicateProvider]
) -> None:
    fake_replicate.schedule(Fault(FAILED, message="CUDA out of memory"))
    draft = write(writer_on(make_provider()), SceneBrief("Aiko", KIT, CHAT))
    assert draft.writer == "offline"
    assert draft.fallback_reason and "CUDA out of memory" in draft.fallback_reason
    assert "PredictionFailedError" in draft.fallback_reason
    assert draft.emotion in ("sadness", "grief") and draft.expression == "sad"
    assert KIT.appearance_prompt in draft.prompt and "at the rooftop" not in draft.prompt


def test_a_prediction_that_never_finishes_is_canceled_and_the_offline_writer_takes_over(
    fake_replicate: FakeReplicateServer, make_provider: Callable[..., ReplicateProvider]
) -> None:
    fake_replicate.schedule(NEVER_FINISHES)
    writer = writer_on(make_provider(prefer_wait_s=0), timeout_s=0.5)
    draft = write(writer, SceneBrief("Aiko", KIT, CHAT))
    assert draft.writer == "offline" and "ProviderTimeoutError" in (draft.fallback_reason or "")
    assert len(fake_replicate.recorded("cancel")) == 1


def test_an_answer_without_json_falls_back(
    fake_replicate: FakeReplicateServer, make_provider: Callable[..., ReplicateProvider]
) -> None:
    fake_replicate.language_reply = lambda _: "I'm sorry, I can't help with that request."
    draft = write(writer_on(make_provider()), SceneBrief("Aiko", KIT, CHAT))
    assert draft.writer == "offline" and "no JSON object" in (draft.fallback_reason or "")


def test_an_emotion_outside_the_vocabulary_is_detected_offline_instead(
    fake_replicate: FakeReplicateServer, make_provider: Callable[..., ReplicateProvider]
) -> None:
    fake_replicate.language_reply = lambda _: json.dumps(
        {"scene": "on a windy rooftop at dusk", "emotion": "melancholy"}
    )
    draft = write(writer_on(make_provider()), SceneBrief("Aiko", KIT, CHAT))
    assert draft.writer == f"replicate:{LLM}" and draft.moment == "on a windy rooftop at dusk"
    assert draft.emotion_source == "detected" and draft.emotion in ("sadness", "grief")
    assert "'melancholy' is not in the vocabulary" in draft.basis["emotion_note"]


def test_a_kit_tag_is_offered_to_the_model_and_selects_the_kits_expression(
    fake_replicate: FakeReplicateServer, make_provider: Callable[..., ReplicateProvider]
) -> None:
    fake_replicate.language_reply = lambda _: (
        'Here you go: {"scene": "looking at old photos by the window", "emotion": "nostalgia"}'
    )
    brief = SceneBrief("Aiko", KIT, CHAT, kit_emotion_tags={"nostalgia": "pensive"})
    draft = write(writer_on(make_provider()), brief)
    assert "nostalgia" in fake_replicate.creates()[0].body["input"]["system_prompt"]
    assert draft.emotion == "nostalgia" and draft.expression == "pensive"


def test_explicit_moment_and_emotion_need_no_language_model(
    fake_replicate: FakeReplicateServer, make_provider: Callable[..., ReplicateProvider]
) -> None:
    brief = SceneBrief("Aiko", KIT, CHAT, moment="in a cafe", emotion="joy")
    draft = write(writer_on(make_provider()), brief)
    assert fake_replicate.creates() == [] and draft.expression == "happy"


def test_parse_answer_takes_the_first_json_object() -> None:
    assert parse_answer('Sure!\n```json\n{"scene": "a"}\n```') == {"scene": "a"}
    assert parse_answer('{"scene": "b", "emotion": "joy"} and more {"x": 1}')["scene"] == "b"


def test_the_writer_shares_the_image_services_provider_and_limits(
    fake_replicate: FakeReplicateServer,
    make_provider: Callable[..., ReplicateProvider],
    tmp_path: Any,
) -> None:
    provider = make_provider()
    service = ImageService(provider, max_concurrency=3, predictions_per_minute=100)
    settings = Settings(_env_file=None, var_dir=tmp_path, scene_writer="replicate")  # type: ignore[call-arg]
    writer = build_scene_writer(settings, service)
    assert isinstance(writer, ReplicateSceneWriter)
    assert writer.provider is provider and writer.limits is service.limits
    assert writer.model == LLM


def test_the_token_never_reaches_the_recorded_reason_or_the_logs(
    fake_replicate: FakeReplicateServer,
    make_provider: Callable[..., ReplicateProvider],
    caplog: Any,
) -> None:
    fake_replicate.schedule(Fault(FAILED, message="denied for {authorization}"))
    with caplog.at_level("DEBUG"):
        draft = write(writer_on(make_provider()), SceneBrief("Aiko", KIT, CHAT))
    assert draft.fallback_reason and "[redacted]" in draft.fallback_reason
    assert fake_replicate.token not in draft.fallback_reason
    assert fake_replicate.token not in caplog.text and "[redacted]" in caplog.text
