"""The kit gate on the real OpenCLIP path (a tiny model from a checkpoint the test writes).

The weights are random, so the verdicts mean nothing; what is checked is that the pipeline
loads OpenCLIP through the configured path, that every score records that embedder and its
weights, and that the text tower's adherence ranks reach the checks.
"""

from __future__ import annotations

import uuid

from avatar_pipeline.catalog import repository as repo
from avatar_pipeline.domain.vocab import EXPRESSION_NAMES, POSE_NAMES
from avatar_pipeline.resources import ConsistencyResource
from avatar_pipeline_tests.kit_runs import check_evaluations, materialize_kit
from avatar_pipeline_tests.pipeline_fixtures import create_kit


def test_kit_scored_by_openclip_records_embedder_and_adherence(
    pipeline, instance, tmp_path, tiny_clip_config, tiny_clip_checkpoint
):
    clip = {
        **pipeline,
        "consistency": ConsistencyResource(
            embedder="clip",
            clip_model=tiny_clip_config,
            clip_pretrained=tiny_clip_checkpoint,
            embedding_cache_dir=str(tmp_path / "clip_embeddings"),
            reports_dir=str(tmp_path / "reports"),
        ),
    }
    kit_id = create_kit(clip)
    result = materialize_kit(clip, instance, kit_id)
    checks = check_evaluations(result)
    assert ("expressions/shy", "adherence") in checks  # evaluated, whatever the verdict

    with clip["catalog"].session() as session:
        assets = repo.list_assets(session, uuid.UUID(kit_id))
    derived = [a for a in assets if a.asset_type in ("expression", "pose")]
    assert derived
    for asset in derived:
        scores = asset.generation_metadata["consistency"]
        assert scores["embedder"] == {
            "kind": "clip",
            "model": tiny_clip_config,
            "weights": scores["embedder"]["weights"],
        }
        assert tiny_clip_checkpoint.split("/")[-1] in scores["embedder"]["weights"]
        assert scores["adherence_rank"] in range(1, 9)
        labels = EXPRESSION_NAMES if asset.asset_type == "expression" else POSE_NAMES
        assert set(scores["adherence_probs"]) == set(labels)
        # the gate is the recorded verdict: canonical exactly when every check passed
        assert asset.is_canonical == scores["passed"]
