"""Scene consistency: every kit-based scene scored against its kit's primary anchor.

The gate's own scorer (``consistency.scores.score_slots``) with the configured embedder, so a
scene's identity is on the same scale, and judged by the same threshold, as the kit's model
sheet. Only the identity verdict decides a scene (a scene changes light, setting and framing on
purpose); the other checks' results are kept in the details. Scoring never loses a paid image:
a scorer failure stores the scene with the verdict ``unmeasured`` and the reason.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from avatar_pipeline.consistency.scores import CandidateInput, score_slots
from avatar_pipeline.consistency.types import Embedder
from avatar_pipeline.settings import Settings

logger = logging.getLogger(__name__)

SCENE_SLOT = "scene"
_EMBEDDERS: dict[tuple[Any, ...], Embedder] = {}
_EMBEDDERS_LOCK = threading.Lock()


@dataclass(frozen=True)
class SceneConsistency:
    score: float | None  # identity vs the primary anchor; None when not measured
    threshold: float | None
    verdict: str  # "pass" | "fail" | "unmeasured"
    details: dict[str, Any] = field(default_factory=dict)

    def as_metadata(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "threshold": self.threshold,
            "verdict": self.verdict,
            **self.details,
        }


def unmeasured(reason: str) -> SceneConsistency:
    return SceneConsistency(None, None, "unmeasured", {"reason": reason})


def scene_embedder(settings: Settings) -> Embedder:
    """The configured embedder (with the embedding cache), loaded once per process."""
    from avatar_pipeline.consistency.embedders import embedder_from_settings

    key = (
        settings.embedder,
        settings.clip_model,
        settings.clip_pretrained,
        settings.clip_device,
        str(settings.embedding_cache_dir),
    )
    with _EMBEDDERS_LOCK:
        embedder = _EMBEDDERS.get(key)
        if embedder is None:
            embedder = embedder_from_settings(settings)
            _EMBEDDERS[key] = embedder
        return embedder


def score_scene(
    embedder: Embedder, *, anchor: bytes, scene: bytes, reference: bytes | None = None
) -> SceneConsistency:
    """Identity of ``scene`` against the primary ``anchor`` (the gate's scorer)."""
    try:
        [slot_score] = score_slots(
            embedder,
            anchor=anchor,
            candidates=[CandidateInput(slot=SCENE_SLOT, image=scene, reference=reference)],
        )
    except Exception as exc:  # the scene is paid for: store it, say why it is unscored
        logger.warning("could not score a scene: %s", exc)
        return unmeasured(f"the scorer failed: {type(exc).__name__}: {exc}"[:300])
    details = slot_score.as_dict()
    identity_verdict = (getattr(slot_score, "verdicts", None) or {}).get("identity")
    if identity_verdict is not None:
        verdict = identity_verdict.verdict
    elif slot_score.identity is None:
        verdict = "unmeasured"
    else:
        verdict = "pass" if slot_score.checks.get("identity") else "fail"
    score = slot_score.identity if verdict != "unmeasured" else None
    return SceneConsistency(
        score=None if score is None else round(float(score), 4),
        threshold=float(slot_score.identity_threshold),
        verdict=verdict,
        details={"scorer": details, "anchor_compared": "primary_anchor"},
    )
