"""The embedding cache: a re-score runs no forward pass, even in a new instance; no mixing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from avatar_pipeline.consistency.cache import CachedEmbedder, EmbeddingCache, embedder_key
from avatar_pipeline.consistency.embedders import OpenClipEmbedder, PerceptualEmbedder
from avatar_pipeline.consistency.scores import CandidateInput, score_slots
from avatar_pipeline_tests.test_consistency.drawing import character_png


def _kit(seed: int = 1) -> tuple[bytes, list[CandidateInput]]:
    anchor = character_png(seed)
    candidates = [
        CandidateInput(f"expression:{mouth}", character_png(seed, mouth, size=240), anchor)
        for mouth in ("neutral", "happy", "sad")
    ]
    candidates.append(CandidateInput("pose:standing", character_png(seed + 50), anchor))
    return anchor, candidates


def test_rescoring_a_kit_runs_no_forward_pass(tiny_clip_checkpoint: str, cache_dir: Path) -> None:
    clip = OpenClipEmbedder(model_name="tiny-test", pretrained=tiny_clip_checkpoint)
    cached = CachedEmbedder(clip, EmbeddingCache(cache_dir))
    anchor, candidates = _kit()

    first = score_slots(cached, anchor=anchor, candidates=candidates)
    assert cached.counters.image_forward_calls == 1  # anchor + candidates in one batch
    assert cached.counters.images_embedded == 1 + len(candidates)

    again = score_slots(cached, anchor=anchor, candidates=candidates)
    assert cached.counters.image_forward_calls == 1
    assert cached.counters.images_embedded == 1 + len(candidates)
    assert [s.as_dict() for s in again] == [s.as_dict() for s in first]

    # A new process (new CachedEmbedder on the same folder) re-scores from disk.
    reopened = CachedEmbedder(clip, EmbeddingCache(cache_dir))
    from_disk = score_slots(reopened, anchor=anchor, candidates=candidates)
    assert reopened.counters.image_forward_calls == 0
    assert reopened.counters.images_embedded == 0
    assert reopened.counters.cache_hits == 1 + len(candidates)
    assert [s.identity for s in from_disk] == [s.identity for s in first]


def test_only_the_misses_are_embedded_in_one_batch(cache_dir: Path) -> None:
    cached = CachedEmbedder(PerceptualEmbedder(), EmbeddingCache(cache_dir))
    known = [character_png(1), character_png(2)]
    cached.embed_images(known)
    new = [character_png(3), character_png(4)]
    vectors = cached.embed_images([known[0], new[0], known[1], new[1], new[0]])
    assert cached.counters.image_forward_calls == 2
    assert cached.counters.images_embedded == 4  # the repeated new[0] is embedded once
    direct = PerceptualEmbedder().embed_images([known[0], new[0], known[1], new[1], new[0]])
    np.testing.assert_allclose(vectors, direct, atol=1e-6)


def test_clip_and_perceptual_embeddings_never_mix(
    tiny_clip_checkpoint: str, cache_dir: Path
) -> None:
    clip = OpenClipEmbedder(model_name="tiny-test", pretrained=tiny_clip_checkpoint)
    perceptual = PerceptualEmbedder()
    assert embedder_key(clip) != embedder_key(perceptual)
    cache = EmbeddingCache(cache_dir)
    image = [character_png(7)]
    clip_vector = CachedEmbedder(clip, cache).embed_images(image)
    perceptual_cached = CachedEmbedder(perceptual, cache)
    perceptual_vector = perceptual_cached.embed_images(image)
    assert perceptual_cached.counters.images_embedded == 1
    assert clip_vector.shape[1] != perceptual_vector.shape[1]
    folders = sorted(p.name for p in cache_dir.iterdir())
    assert [f.split("-")[0] for f in folders] == ["clip", "perceptual"]
    assert all((cache_dir / f / "embedder.json").is_file() for f in folders)


@pytest.mark.parametrize("damage", [b"not a numpy file", b""])  # b"": lost in a power cut
def test_a_corrupt_cache_file_is_recomputed(cache_dir: Path, damage: bytes) -> None:
    cached = CachedEmbedder(PerceptualEmbedder(), EmbeddingCache(cache_dir))
    image = character_png(8)
    expected = cached.embed_images([image])
    [stored] = list(cache_dir.glob("perceptual-*/*/*.npy"))
    stored.write_bytes(damage)
    again = CachedEmbedder(PerceptualEmbedder(), EmbeddingCache(cache_dir))
    np.testing.assert_allclose(again.embed_images([image]), expected)
    assert again.counters.images_embedded == 1
    assert not list(cache_dir.glob("perceptual-*/*/*.tmp"))


def test_text_embeddings_are_memoised(tiny_clip_checkpoint: str, cache_dir: Path) -> None:
    clip = OpenClipEmbedder(model_name="tiny-test", pretrained=tiny_clip_checkpoint)
    cached = CachedEmbedder(clip, EmbeddingCache(cache_dir))
    first = cached.embed_texts(["happy", "sad"])
    second = cached.embed_texts(["sad", "happy", "angry"])
    assert cached.counters.text_forward_calls == 2
    assert cached.counters.texts_embedded == 3
    np.testing.assert_allclose(second[:2], first[::-1])


def test_label_prompt_embeddings_persist(tiny_clip_checkpoint: str, cache_dir: Path) -> None:
    clip = OpenClipEmbedder(model_name="tiny-test", pretrained=tiny_clip_checkpoint)
    first = CachedEmbedder(clip, EmbeddingCache(cache_dir)).embed_texts(["a happy face"])
    assert list(cache_dir.glob("clip-*/text/*/*.npy"))
    reopened = CachedEmbedder(clip, EmbeddingCache(cache_dir))
    np.testing.assert_allclose(reopened.embed_texts(["a happy face"]), first)
    assert reopened.counters.text_forward_calls == 0
