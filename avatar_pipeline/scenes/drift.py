"""Scene drift: are a kit's recent production scenes still its character?

Every kit-based scene carries its identity score against the kit's primary anchor
(``scene_images.consistency_score``; the threshold and embedder in its metadata). A kit
*drifts* when the median of its last ``window`` scored scenes falls below the identity threshold
(minus an optional ``margin``) — after a provider upgrade, say; the scores are also grouped by
the model version that drew them, so the view shows where the drop began. Fewer than
``min_scenes`` scored scenes is "unmeasured", never "ok". Scores from another embedder than the
newest scene's are left out (a CLIP cosine and a perceptual cosine are different scales).
"""

from __future__ import annotations

import statistics
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from avatar_pipeline.catalog.models import AvatarKit, SceneImage
from avatar_pipeline.catalog.scenes import kit_scenes, kits_with_scenes

OK, DRIFTING, UNMEASURED = "ok", "drifting", "unmeasured"


@dataclass(frozen=True)
class ScenePoint:
    scene_id: str
    created_at: str
    score: float
    threshold: float
    verdict: str
    emotion: str | None
    model: str | None
    model_version: str | None
    storage_bucket: str
    storage_path: str


@dataclass(frozen=True)
class VersionSummary:
    model: str | None
    model_version: str | None
    scenes: int
    median: float
    first_at: str


@dataclass
class KitDrift:
    kit_id: str
    kit_name: str
    status: str  # ok | drifting | unmeasured
    reason: str
    threshold: float | None
    window: int
    recent_median: float | None
    recent_below: int
    embedder: str | None
    points: list[ScenePoint] = field(default_factory=list)  # oldest first
    versions: list[VersionSummary] = field(default_factory=list)
    worst: list[ScenePoint] = field(default_factory=list)  # lowest first

    @property
    def drifting(self) -> bool:
        return self.status == DRIFTING

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _iso(value: datetime) -> str:
    return value.isoformat(timespec="seconds")


def _point(scene: SceneImage) -> ScenePoint | None:
    meta = scene.generation_metadata or {}
    consistency = meta.get("consistency") or {}
    if scene.consistency_score is None or consistency.get("threshold") is None:
        return None
    return ScenePoint(
        scene_id=str(scene.id),
        created_at=_iso(scene.created_at),
        score=float(scene.consistency_score),
        threshold=float(consistency["threshold"]),
        verdict=str(consistency.get("verdict", "")),
        emotion=meta.get("emotion"),
        model=meta.get("model"),
        model_version=meta.get("model_version"),
        storage_bucket=scene.storage_bucket,
        storage_path=scene.storage_path,
    )


def _embedder(scene: SceneImage) -> str | None:
    scorer = ((scene.generation_metadata or {}).get("consistency") or {}).get("scorer") or {}
    info = scorer.get("embedder") or {}
    return f"{info.get('kind')}:{info.get('model')}" if info else None


def _versions(points: list[ScenePoint]) -> list[VersionSummary]:
    groups: dict[tuple[str | None, str | None], list[ScenePoint]] = {}
    for point in points:
        groups.setdefault((point.model, point.model_version), []).append(point)
    summaries = [
        VersionSummary(
            model, version, len(ps), statistics.median(p.score for p in ps), ps[0].created_at
        )
        for (model, version), ps in groups.items()
    ]
    return sorted(summaries, key=lambda v: v.first_at)


def kit_drift(
    session: Session,
    kit_id: uuid.UUID | str,
    *,
    window: int = 20,
    min_scenes: int = 3,
    margin: float = 0.0,
    history: int = 200,
    worst: int = 4,
) -> KitDrift:
    """The kit's scene scores over time and whether its recent scenes drift (reads only)."""
    kit = session.get(AvatarKit, uuid.UUID(str(kit_id)))
    name = kit.name if kit is not None else "(deleted kit)"
    scenes = kit_scenes(session, kit_id, limit=history)  # newest first
    embedder = next((e for e in (_embedder(s) for s in scenes) if e), None)
    scored = [(s, p) for s in scenes if (p := _point(s)) is not None and _embedder(s) == embedder]
    points = [p for _, p in reversed(scored)]  # oldest first
    recent = [p for _, p in scored[:window]]
    drift = KitDrift(
        kit_id=str(kit_id),
        kit_name=name,
        status=UNMEASURED,
        reason="",
        threshold=None,
        window=window,
        recent_median=None,
        recent_below=0,
        embedder=embedder,
        points=points,
        versions=_versions(points),
        worst=sorted(points, key=lambda p: p.score)[:worst],
    )
    unscored = len(scenes) - len(scored)
    if len(recent) < min_scenes:
        drift.reason = (
            f"not measured: {len(recent)} scored scene(s), at least {min_scenes} needed"
            + (f" ({unscored} scene(s) without a score)" if unscored else "")
        )
        return drift
    threshold = recent[0].threshold - margin
    median = statistics.median(p.score for p in recent)
    drift.threshold = round(threshold, 4)
    drift.recent_median = round(median, 4)
    drift.recent_below = sum(1 for p in recent if p.score < threshold)
    if median < threshold:
        drift.status = DRIFTING
        drift.reason = (
            f"median identity {median:.3f} of the last {len(recent)} scenes is below the "
            f"threshold {threshold:.3f} ({drift.recent_below} of them below)"
        )
    else:
        drift.status = OK
        drift.reason = (
            f"median identity {median:.3f} of the last {len(recent)} scenes reaches the "
            f"threshold {threshold:.3f}"
        )
    return drift


def fleet_drift(
    session: Session, *, window: int = 20, min_scenes: int = 3, margin: float = 0.0
) -> list[KitDrift]:
    """:func:`kit_drift` of every kit that has scenes."""
    return [
        kit_drift(session, kit_id, window=window, min_scenes=min_scenes, margin=margin)
        for kit_id in kits_with_scenes(session)
    ]
