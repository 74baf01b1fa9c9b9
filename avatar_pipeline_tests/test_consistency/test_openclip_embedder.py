"""The real OpenCLIP loading path, on a tiny model and a checkpoint the test writes."""

from __future__ import annotations

import logging
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from avatar_pipeline.consistency.embedders import (
    EmbedderUnavailableError,
    OpenClipEmbedder,
    PerceptualEmbedder,
    clear_clip_registry,
    embedder_from_settings,
    load_embedder,
    loaded_clip_models,
)
from avatar_pipeline.consistency.scores import adherence, adherence_batch, identity_scores
from avatar_pipeline.settings import Settings
from avatar_pipeline_tests.test_consistency.drawing import character_png


@pytest.fixture()
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Fail any attempt to open a network connection (the process boundary)."""
    attempts: list[object] = []

    def refuse(self: socket.socket, address: object) -> None:
        attempts.append(address)
        raise OSError(f"network access attempted in a test: {address!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    return attempts


def test_embeddings_are_l2_normalised_float32(tiny_clip_checkpoint: str) -> None:
    embedder = OpenClipEmbedder(model_name="tiny-test", pretrained=tiny_clip_checkpoint)
    vectors = embedder.embed_images([character_png(1), character_png(2), character_png(3)])
    assert vectors.shape == (3, 32)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    texts = embedder.embed_texts(["a happy face", "a sad face"])
    assert texts.shape == (2, 32)
    np.testing.assert_allclose(np.linalg.norm(texts, axis=1), 1.0, atol=1e-5)
    assert embedder.info.kind == "clip"
    assert embedder.info.model == "tiny-test"
    assert embedder.info.weights == tiny_clip_checkpoint
    assert embedder.has_text_tower


def test_batches_match_single_forward_passes(tiny_clip_checkpoint: str) -> None:
    images = [character_png(seed) for seed in range(5)]
    batched = OpenClipEmbedder(
        model_name="tiny-test", pretrained=tiny_clip_checkpoint, batch_size=2
    )
    together = batched.embed_images(images)
    one_by_one = np.concatenate([batched.embed_images([image]) for image in images])
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)


def test_identical_images_score_one_and_different_ones_less(tiny_clip_checkpoint: str) -> None:
    embedder = OpenClipEmbedder(model_name="tiny-test", pretrained=tiny_clip_checkpoint)
    anchor = character_png(1)
    same, other = identity_scores(embedder, anchor, [character_png(1), character_png(99)])
    assert same == pytest.approx(1.0, abs=1e-5)
    assert other < same


def test_model_is_loaded_once_per_process(tiny_clip_checkpoint: str) -> None:
    clear_clip_registry()
    results: list[OpenClipEmbedder] = []

    def build() -> None:
        results.append(OpenClipEmbedder(model_name="tiny-test", pretrained=tiny_clip_checkpoint))

    threads = [threading.Thread(target=build) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4
    assert all(e.model is results[0].model for e in results)
    assert loaded_clip_models() == [("tiny-test", tiny_clip_checkpoint, "cpu")]
    again = load_embedder("clip", model_name="tiny-test", pretrained=tiny_clip_checkpoint)
    assert isinstance(again, OpenClipEmbedder)
    assert again.model is results[0].model


def test_missing_checkpoint_is_a_clear_error(tiny_clip_config: str) -> None:
    with pytest.raises(EmbedderUnavailableError) as caught:
        load_embedder("clip", model_name=tiny_clip_config, pretrained="/nonexistent.pt")
    message = str(caught.value)
    assert "/nonexistent.pt" in message
    assert "tiny-test" in message
    assert "AVATAR_CLIP_PRETRAINED" in message


def test_no_weights_is_refused_rather_than_random(tiny_clip_config: str) -> None:
    with pytest.raises(EmbedderUnavailableError, match="no weights given"):
        load_embedder("clip", model_name=tiny_clip_config, pretrained="")


def test_unknown_model_is_a_clear_error() -> None:
    with pytest.raises(EmbedderUnavailableError, match="unknown open_clip model 'no-such-model'"):
        load_embedder("clip", model_name="no-such-model", pretrained="/nonexistent.pt")


def test_pretrained_tag_without_local_weights_fails_fast_without_network(
    tmp_path: Path, no_network: list[object], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AVATAR_ALLOW_WEIGHT_DOWNLOAD", raising=False)
    started = time.perf_counter()
    with pytest.raises(EmbedderUnavailableError) as caught:
        load_embedder(
            "clip", model_name="ViT-B-32", pretrained="laion2b_s34b_b79k", cache_dir=tmp_path
        )
    assert time.perf_counter() - started < 5
    assert no_network == []
    message = str(caught.value)
    assert "ViT-B-32/laion2b_s34b_b79k are not on this machine" in message
    assert str(tmp_path) in message
    assert "AVATAR_CLIP_PRETRAINED" in message


def test_pretrained_tag_loads_from_the_local_hub_cache(
    tiny_clip_checkpoint: str,
    tmp_path: Path,
    no_network: list[object],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A tag whose weights are already in the Hugging Face cache loads offline, from there."""
    import open_clip.pretrained as pretrained_registry

    monkeypatch.setitem(
        pretrained_registry._PRETRAINED,
        "tiny-test",
        {"localtag": pretrained_registry._pcfg(hf_hub="test-org/tiny-test/")},
    )
    repo = tmp_path / "models--test-org--tiny-test"
    snapshot = repo / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    (snapshot / "open_clip_pytorch_model.bin").write_bytes(Path(tiny_clip_checkpoint).read_bytes())

    embedder = load_embedder(
        "clip", model_name="tiny-test", pretrained="localtag", cache_dir=tmp_path
    )
    assert embedder.info.weights == "localtag"
    reference = OpenClipEmbedder(model_name="tiny-test", pretrained=tiny_clip_checkpoint)
    image = [character_png(4)]
    np.testing.assert_allclose(
        embedder.embed_images(image), reference.embed_images(image), atol=1e-5
    )
    assert no_network == []


def test_auto_falls_back_to_perceptual_and_says_so(
    tiny_clip_config: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="avatar_pipeline.consistency"):
        embedder = load_embedder("auto", model_name=tiny_clip_config, pretrained="/nonexistent.pt")
    assert isinstance(embedder, PerceptualEmbedder)
    assert embedder.info.kind == "perceptual"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any(
        "falling back to the perceptual embedder" in r.getMessage()
        and "/nonexistent.pt" in r.getMessage()
        for r in warnings
    )


def test_auto_uses_clip_when_weights_load(
    tiny_clip_checkpoint: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="avatar_pipeline.consistency"):
        embedder = load_embedder("auto", model_name="tiny-test", pretrained=tiny_clip_checkpoint)
    assert embedder.info.kind == "clip"
    assert any("OpenCLIP tiny-test" in r.getMessage() for r in caplog.records)


def test_embedder_from_settings_wraps_the_cache(tiny_clip_checkpoint: str, tmp_path: Path) -> None:
    settings = Settings(
        embedder="clip",
        clip_model="tiny-test",
        clip_pretrained=tiny_clip_checkpoint,
        var_dir=tmp_path,
    )
    embedder = embedder_from_settings(settings)
    assert embedder.info.weights == tiny_clip_checkpoint
    embedder.embed_images([character_png(5)])
    assert list((tmp_path / "embeddings").glob("clip-*/*/*.npy"))


def test_adherence_ranks_the_intended_label(tiny_clip_checkpoint: str) -> None:
    embedder = OpenClipEmbedder(model_name="tiny-test", pretrained=tiny_clip_checkpoint)
    labels = ["neutral", "happy", "sad", "angry"]
    result = adherence(embedder, character_png(1, "happy"), "happy", labels)
    assert result is not None
    rank, probs = result
    assert set(probs) == set(labels)
    assert sum(probs.values()) == pytest.approx(1.0)
    assert 1 <= rank <= len(labels)
    assert rank == 1 + sum(p > probs["happy"] for p in probs.values())

    batch = adherence_batch(
        embedder,
        [character_png(1, "happy"), character_png(1, "sad")],
        ["happy", "sad"],
        [labels, labels],
    )
    assert batch is not None
    assert batch[0][0] == rank
    # a batch of two goes through other float32 kernels than a batch of one, and the logit scale
    # of 100 magnifies their last-bit differences
    assert batch[0][1] == pytest.approx(probs, rel=1e-4, abs=1e-6)


def test_adherence_rejects_a_label_outside_its_set(tiny_clip_checkpoint: str) -> None:
    embedder = OpenClipEmbedder(model_name="tiny-test", pretrained=tiny_clip_checkpoint)
    with pytest.raises(ValueError, match="'bored' is not in its label set"):
        adherence(embedder, character_png(1), "bored", ["happy", "sad"])
