"""The perceptual embedder and its calibrated thresholds, on offline-provider images."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np
import pytest

from avatar_pipeline.consistency.embedders import PerceptualEmbedder, thresholds_for
from avatar_pipeline.consistency.scores import (
    CandidateInput,
    adherence,
    score_anchor,
    score_slots,
)
from avatar_pipeline.domain.prompts import (
    KitPrompts,
    expression_prompt,
    fullbody_prompt,
    portrait_prompt,
    pose_prompt,
)
from avatar_pipeline.domain.vocab import EXPRESSION_NAMES, EXPRESSIONS_BY_NAME, POSES_BY_NAME
from avatar_pipeline.imaging.providers.offline import OfflineProvider
from avatar_pipeline.imaging.types import EditRequest, GenerateRequest
from avatar_pipeline_tests.test_consistency.drawing import character_png, reencoded

SIZE = 384
MICKEY = KitPrompts("a girl with red hair and green eyes in a blue cardigan", "anime style")
OTHER = KitPrompts("an old man with a grey beard and glasses in a brown suit", "watercolor")


@dataclass(frozen=True)
class OfflineKit:
    anchor: bytes
    happy: bytes
    sad: bytes
    fullbody: bytes
    sitting: bytes
    stranger: bytes


async def _make_kit() -> OfflineKit:
    provider = OfflineProvider()

    async def edit(prompt: str, refs: tuple[bytes, ...], seed: int) -> bytes:
        request = EditRequest(prompt, refs, width=SIZE, height=SIZE, seed=seed)
        return (await provider.edit(request)).images[0]

    async def generate(prompts: KitPrompts, seed: int) -> bytes:
        request = GenerateRequest(portrait_prompt(prompts), width=SIZE, height=SIZE, seed=seed)
        return (await provider.generate(request)).images[0]

    anchor = await generate(MICKEY, 11)
    fullbody = await edit(fullbody_prompt(MICKEY), (anchor,), 1)
    return OfflineKit(
        anchor=anchor,
        happy=await edit(expression_prompt(MICKEY, EXPRESSIONS_BY_NAME["happy"]), (anchor,), 2),
        sad=await edit(expression_prompt(MICKEY, EXPRESSIONS_BY_NAME["sad"]), (anchor,), 3),
        fullbody=fullbody,
        sitting=await edit(pose_prompt(MICKEY, POSES_BY_NAME["sitting"]), (anchor, fullbody), 4),
        stranger=await generate(OTHER, 97),
    )


@pytest.fixture(scope="module")
def kit() -> OfflineKit:
    return asyncio.run(_make_kit())


def test_vectors_are_normalised_and_deterministic() -> None:
    embedder = PerceptualEmbedder()
    images = [character_png(1), character_png(2, "sad")]
    vectors = embedder.embed_images(images)
    assert vectors.shape == (2, embedder.dim) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(vectors, PerceptualEmbedder().embed_images(images))
    assert embedder.embed_images([]).shape == (0, embedder.dim)
    assert float(vectors[0] @ vectors[0]) == pytest.approx(1.0, abs=1e-6)


def test_no_text_tower() -> None:
    embedder = PerceptualEmbedder()
    assert not embedder.has_text_tower
    assert embedder.info.as_dict() == {
        "kind": "perceptual",
        "model": "character-lab-bust-v5",
        "weights": "none",
    }
    assert adherence(embedder, character_png(1), "happy", ["happy", "sad"]) is None
    with pytest.raises(NotImplementedError, match="no text tower"):
        embedder.embed_texts(["happy"])


def test_expression_and_pose_edits_of_the_anchor_pass(kit: OfflineKit) -> None:
    embedder = PerceptualEmbedder()
    labels = list(EXPRESSION_NAMES)
    candidates = [
        CandidateInput("expression:happy", kit.happy, kit.anchor, "happy", labels),
        CandidateInput("expression:sad", kit.sad, kit.anchor, "sad", labels),
        CandidateInput("anchor_fullbody", kit.fullbody, kit.anchor),
        CandidateInput("pose:sitting", kit.sitting, kit.fullbody),
    ]
    scores = score_slots(embedder, anchor=kit.anchor, candidates=candidates)
    threshold = thresholds_for(embedder.info).identity_min
    for candidate, score in zip(candidates, scores, strict=True):
        assert score.identity is not None and score.identity >= threshold, candidate.slot
        # identity and not-a-copy pass; adherence is unmeasured without a text tower (the
        # slot's overall verdict is GATE-WIRING's policy, tested in test_scores.py)
        assert score.checks["identity"], (candidate.slot, score.as_dict())
        assert score.checks["not_a_copy"], (candidate.slot, score.as_dict())
        assert score.embedder == PerceptualEmbedder.info


def test_a_different_character_fails_identity(kit: OfflineKit) -> None:
    embedder = PerceptualEmbedder()
    [score] = score_slots(
        embedder,
        anchor=kit.anchor,
        candidates=[CandidateInput("expression:happy", kit.stranger, kit.anchor)],
    )
    assert score.identity is not None
    assert score.identity < thresholds_for(embedder.info).identity_min
    assert not score.checks["identity"] and not score.passed
    assert score.checks["not_a_copy"]
    drifted = score_anchor(embedder, anchor=kit.stranger, previous_anchor=kit.anchor)
    assert not drifted.passed


def test_a_copy_of_the_anchor_fails_not_a_copy(kit: OfflineKit) -> None:
    embedder = PerceptualEmbedder()
    copies = [kit.anchor, reencoded(kit.anchor), reencoded(kit.anchor, quality=70, scale=0.5)]
    scores = score_slots(
        embedder,
        anchor=kit.anchor,
        candidates=[CandidateInput("expression:sad", c, kit.anchor) for c in copies],
    )
    for score in scores:
        assert score.checks["identity"]  # a copy looks exactly like the character...
        assert score.is_copy and not score.checks["not_a_copy"]  # ...and is still refused
        assert not score.passed
    assert scores[0].copy_distance == 0


def test_skin_hued_hair_is_not_taken_for_the_face() -> None:
    """Red hair next to a pale face (both skin-like hues, touching through the hair's outline)
    used to merge into one face blob, so the skin tone measured was partly the hair's; the face
    is now bounded by colour edges and its tone is the drawn skin's."""
    import random
    from dataclasses import replace

    from avatar_pipeline.consistency.embedders.perceptual import (
        _SKIN_SIGMA,
        _kernel,
        character_features,
    )
    from avatar_pipeline.consistency.isolation import isolate
    from avatar_pipeline_tests.eval_art import renderer_b
    from avatar_pipeline_tests.eval_art.backgrounds import background
    from avatar_pipeline_tests.eval_art.compose import place

    skin = (240, 200, 185)
    char = replace(renderer_b.random_character(random.Random(11)), hair=(200, 90, 100), skin=skin)
    image = place(
        renderer_b.render_b(char, framing="portrait", size=256), background("flat", 1, 256)
    )
    tone = character_features(isolate(image, working_side=128), image)["skin_tone"]
    drawn = _kernel(np.array(skin[:2]) / sum(skin), _SKIN_SIGMA)
    assert float(tone @ drawn) > 0.95  # the same tone (a mismatch is 0.36, unknown 0.6)
