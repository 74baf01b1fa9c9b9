"""Slot scores: identity, adherence, not-a-copy, regression against the canonical, thresholds."""

from __future__ import annotations

from pathlib import Path

import pytest

from avatar_pipeline.consistency.cache import CachedEmbedder, EmbeddingCache
from avatar_pipeline.consistency.embedders import (
    DEFAULT_THRESHOLDS,
    OpenClipEmbedder,
    PerceptualEmbedder,
    thresholds_for,
)
from avatar_pipeline.consistency.scores import (
    POSE_TEMPLATE,
    CandidateInput,
    best_candidates,
    is_copy,
    local_difference,
    perceptual_copy_distance,
    score_anchor,
    score_slots,
)
from avatar_pipeline.consistency.types import EmbedderInfo, Thresholds
from avatar_pipeline_tests.test_consistency.drawing import character_png, reencoded

EXPRESSIONS = ["neutral", "happy", "sad", "angry"]


@pytest.fixture()
def clip(tiny_clip_checkpoint: str) -> OpenClipEmbedder:
    return OpenClipEmbedder(model_name="tiny-test", pretrained=tiny_clip_checkpoint)


def test_slot_scores_record_every_check_and_the_embedder(
    clip: OpenClipEmbedder, cache_dir: Path
) -> None:
    cached = CachedEmbedder(clip, EmbeddingCache(cache_dir))
    anchor = character_png(1)
    candidates = [
        CandidateInput("expression:happy", character_png(1, "happy"), anchor, "happy", EXPRESSIONS),
        CandidateInput(
            "pose:sitting",
            character_png(2),
            anchor,
            "sitting",
            ["standing", "sitting"],
            template=POSE_TEMPLATE,
        ),
        CandidateInput("anchor_fullbody", anchor, anchor),
    ]
    scores = score_slots(cached, anchor=anchor, candidates=candidates)
    assert cached.counters.image_forward_calls == 1
    assert cached.counters.text_forward_calls == 1
    assert cached.counters.texts_embedded == len(EXPRESSIONS) + 2
    assert len(scores) == 3
    for score, labelled in zip(scores, (True, True, False), strict=True):
        expected = {"identity", "not_a_copy"} | ({"adherence"} if labelled else set())
        assert set(score.checks) == set(score.verdicts) == expected
        assert score.embedder == clip.info
        assert score.identity_threshold == thresholds_for(clip.info).identity_min
        assert score.passed == all(score.checks.values())
        assert score.as_dict()["embedder"]["weights"] == clip.info.weights
    happy, sitting, copy = scores
    assert happy.adherence_rank is not None and happy.adherence_probs is not None
    assert set(happy.adherence_probs) == set(EXPRESSIONS)
    assert happy.checks["adherence"] == (happy.adherence_rank == 1)
    assert sitting.adherence_probs is not None and set(sitting.adherence_probs) == {
        "standing",
        "sitting",
    }
    assert copy.identity == pytest.approx(1.0, abs=1e-5)
    assert copy.copy_distance == 0 and copy.is_copy and not copy.checks["not_a_copy"]
    assert "a copy of the reference" in copy.verdicts["not_a_copy"].why
    # no intended label: no adherence check at all (not a silent pass)
    assert copy.adherence_rank is None and "adherence" not in copy.verdicts


def test_identity_must_not_regress_below_the_current_canonical() -> None:
    embedder = PerceptualEmbedder()
    anchor = character_png(1)
    candidate = CandidateInput("expression:happy", character_png(1, "happy"), None)
    loose = Thresholds(identity_min=0.0, copy_max_hamming=-1, copy_max_changed_fraction=0.0)
    [fresh] = score_slots(embedder, anchor=anchor, candidates=[candidate], thresholds=loose)
    assert fresh.identity is not None and fresh.checks["identity"]

    [better_old] = score_slots(
        embedder,
        anchor=anchor,
        candidates=[candidate],
        thresholds=loose,
        current_canonical_scores={"expression:happy": fresh.identity + 0.05},
    )
    assert not better_old.checks["identity"]
    assert "current canonical score" in better_old.notes["identity"]

    [within_tolerance] = score_slots(
        embedder,
        anchor=anchor,
        candidates=[candidate],
        thresholds=loose,
        current_canonical_scores={"expression:happy": fresh.identity + 0.01},
    )
    assert within_tolerance.checks["identity"]


def test_without_a_text_tower_adherence_is_unmeasured_never_a_pass() -> None:
    anchor = character_png(1)
    [score] = score_slots(
        PerceptualEmbedder(),
        anchor=anchor,
        candidates=[
            CandidateInput("expression:sad", character_png(1, "sad"), anchor, "sad", EXPRESSIONS)
        ],
    )
    assert score.adherence_rank is None and score.adherence_probs is None
    assert score.adherence_label == "sad"
    verdict = score.verdicts["adherence"]
    assert verdict.verdict == "unmeasured" and verdict.required
    assert "not measured" in verdict.why and "no text tower" in verdict.why
    assert score.checks["adherence"] is False  # the old boolean view: not a pass
    assert score.status == "unmeasured" and not score.passed and not score.failed
    assert score.unmeasured == ["adherence"]
    assert score.as_dict()["verdicts"]["adherence"]["verdict"] == "unmeasured"


def test_copies_are_caught_through_re_encoding() -> None:
    anchor = character_png(3, size=512)
    limits = DEFAULT_THRESHOLDS["perceptual"]
    for lazy_copy in (anchor, reencoded(anchor), reencoded(anchor, quality=60, scale=0.5)):
        distance = perceptual_copy_distance(lazy_copy, anchor)
        local = local_difference(lazy_copy, anchor)
        assert is_copy(distance, limits.copy_max_hamming, local, limits.copy_max_local_difference)
    other = character_png(40, size=512)  # same layout, other colours: pHash is close
    assert not is_copy(
        perceptual_copy_distance(other, anchor),
        limits.copy_max_hamming,
        local_difference(other, anchor),
        limits.copy_max_local_difference,
    )


def test_an_edit_that_keeps_the_phash_is_not_a_copy() -> None:
    """Changing only the mouth leaves the 64-bit pHash (almost) unchanged, not the pixels."""
    anchor = character_png(1, size=512)
    smile = character_png(1, "happy", size=512)
    distance = perceptual_copy_distance(smile, anchor)
    assert distance <= DEFAULT_THRESHOLDS["perceptual"].copy_max_hamming  # pHash alone: "copy"
    assert (
        local_difference(smile, anchor) > DEFAULT_THRESHOLDS["perceptual"].copy_max_local_difference
    )
    [score] = score_slots(
        PerceptualEmbedder(),
        anchor=anchor,
        candidates=[CandidateInput("expression:happy", smile, anchor)],
    )
    assert score.copy_distance == distance
    assert not score.is_copy and score.checks["not_a_copy"]
    assert "a new picture" in score.verdicts["not_a_copy"].why


def test_missing_reference_compares_with_the_anchor() -> None:
    anchor = character_png(1)
    [score] = score_slots(
        PerceptualEmbedder(), anchor=anchor, candidates=[CandidateInput("pose:waving", anchor)]
    )
    assert score.is_copy and score.copy_distance == 0
    assert "primary anchor" in score.notes["not_a_copy"]


def test_score_anchor_against_the_previous_portrait() -> None:
    embedder = PerceptualEmbedder()
    first = score_anchor(embedder, anchor=character_png(1), previous_anchor=None)
    assert first.passed and first.identity is None
    assert "defines the kit's identity" in first.verdicts["identity"].why
    same = score_anchor(embedder, anchor=character_png(1), previous_anchor=character_png(1))
    assert same.passed and same.identity == pytest.approx(1.0, abs=1e-6)
    drifted = score_anchor(embedder, anchor=character_png(77), previous_anchor=character_png(1))
    assert drifted.identity is not None and drifted.identity < same.identity
    assert drifted.checks["identity"] == (drifted.identity >= drifted.identity_threshold)


def test_best_of_n_picks_the_most_consistent_passing_candidate() -> None:
    embedder = PerceptualEmbedder()
    anchor = character_png(1)
    candidates = [
        CandidateInput("expression:happy", character_png(60), anchor),  # another character
        CandidateInput("expression:happy", character_png(1, "happy", size=200), anchor),
        CandidateInput("expression:sad", anchor, anchor),  # a copy: fails
    ]
    loose = Thresholds(identity_min=0.0, copy_max_hamming=0)
    scores = score_slots(embedder, anchor=anchor, candidates=candidates, thresholds=loose)
    assert best_candidates(candidates, scores) == {"expression:happy": 1}


def test_thresholds_per_embedder_and_overrides() -> None:
    clip = EmbedderInfo("clip", "ViT-B-32", "laion2b_s34b_b79k")
    perceptual = PerceptualEmbedder.info
    assert thresholds_for(clip).identity_min == pytest.approx(0.80)
    assert thresholds_for(perceptual) == DEFAULT_THRESHOLDS["perceptual"]
    assert thresholds_for(clip, {"identity_min": 0.85}).identity_min == 0.85
    per_kind = {"clip": {"identity_min": 0.9}, "perceptual": {"copy_max_hamming": 7}}
    assert thresholds_for(clip, per_kind).identity_min == 0.9
    assert thresholds_for(perceptual, per_kind).copy_max_hamming == 7
    with pytest.raises(ValueError, match="unknown threshold field"):
        thresholds_for(clip, {"identity": 0.9})
    with pytest.raises(ValueError, match="no default thresholds"):
        thresholds_for(EmbedderInfo("dino", "v2", "none"))
