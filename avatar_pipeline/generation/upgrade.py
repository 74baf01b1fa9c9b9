"""Model upgrades as a per-kit canary: the new images of a kit move together or not at all.

A run triggered by a model upgrade (trigger ``model-upgrade``) stores every re-generated slot as
a non-canonical candidate tagged ``generation_metadata["candidate_set"] =
"model-upgrade:<id>"`` (``review_state='pending'``); derived slots are edited from the set's new
anchors, never from the old ones. When the run ends, :func:`settle_canary` decides for the whole
set, in one transaction:

- DRAFT kit: the set becomes canonical only when it is complete (every slot the upgrade affects
  has a new image), every image passed the gate, and the set's mean identity is at least the old
  set's mean identity minus ``tolerance`` (default :data:`DEFAULT_TOLERANCE`). Otherwise the old
  images stay canonical and the set stays pending for a person, with the reason in the report.
- ACTIVE (approved) kit: the set always stays pending for a person (coordination rule); the
  report says whether it would have passed.

Either way an old-vs-new comparison report is written beside the kit's reports
(``upgrade_report.py``). A kit therefore never ends on a mix of model versions unless a person
chooses it.
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from statistics import fmean
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from avatar_pipeline.catalog import candidates
from avatar_pipeline.catalog import repository as repo
from avatar_pipeline.catalog.db import session_scope
from avatar_pipeline.generation.canary import CanaryVerdict, SlotComparison
from avatar_pipeline.generation.outcomes import SlotOutcome, SlotStatus
from avatar_pipeline.storage.base import ObjectStore

logger = logging.getLogger(__name__)

MODEL_UPGRADE = "model-upgrade"
DEFAULT_TOLERANCE = 0.02  # mean identity may drop by at most this much (cosine similarity)
CANARY_HOLD = (
    "model-upgrade canary: the kit's new images are promoted together, only when the whole set "
    "passes the gate and is at least as consistent as the images it replaces"
)


def is_canary(trigger: str) -> bool:
    return trigger == MODEL_UPGRADE


def canary_hold(trigger: str) -> str | None:
    """The hold reason every image of an upgrade run gets (None for other triggers)."""
    return CANARY_HOLD if is_canary(trigger) else None


def _identity(meta: dict[str, Any]) -> float | None:
    value = (meta.get("consistency") or {}).get("identity")
    return float(value) if value is not None else None


def _verdict(meta: dict[str, Any]) -> str:
    """'pass' | 'fail' | 'unmeasured' of a stored image's consistency scores."""
    consistency = meta.get("consistency") or {}
    if "status" in consistency:
        return str(consistency["status"])
    return "pass" if consistency.get("passed") else "fail"


def settle_canary(
    session_factory: sessionmaker[Session],
    store: ObjectStore,
    kit_id: str,
    outcomes: list[SlotOutcome],
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    reports_dir: Path | str | None = None,
) -> CanaryVerdict | None:
    """Promote the run's candidate set kit-atomically, or keep the old set (see module doc).

    Returns None when the run stored no candidate set (nothing was re-generated)."""
    set_names = {
        str(o.generation.get(candidates.CANDIDATE_SET))
        for o in outcomes
        if o.generation.get(candidates.CANDIDATE_SET)
    }
    affected = [o.slot.name for o in outcomes]
    failed = {
        o.slot.name: o.reason or o.status.value
        for o in outcomes
        if o.status in (SlotStatus.FAILED, SlotStatus.SKIPPED)
    }
    if not set_names and not failed:
        return None
    set_name = sorted(set_names)[0] if set_names else None
    with session_scope(session_factory) as session:
        kit = repo.get_kit(session, uuid.UUID(kit_id))
        canonical = repo.canonical_assets(session, kit.id)
        rows = (
            candidates.candidate_set_rows(session, kit.id, set_name, pending_only=False)
            if set_name
            else []
        )
        new_by_slot = {repo.slot_of(a): a for a in rows}
        # a slot whose request did not change (identical fingerprint) reuses its stored image:
        # the canonical one, or the candidate an earlier run of this canary stored
        unchanged = {
            o.slot.name: o.asset_id
            for o in outcomes
            if o.status is SlotStatus.REUSED and o.asset_id and o.slot.name not in new_by_slot
        }
        for slot, asset_id in unchanged.items():
            new_by_slot[slot] = repo.get_asset(session, uuid.UUID(asset_id))
        comparisons = []
        for slot in affected:
            old, new = canonical.get(slot), new_by_slot.get(slot)
            if slot in unchanged:
                failed.setdefault(slot, "unchanged: identical request, image reused")
            old_meta = dict(old.generation_metadata or {}) if old is not None else {}
            new_meta = dict(new.generation_metadata or {}) if new is not None else {}
            comparisons.append(
                SlotComparison(
                    slot=slot,
                    old_asset_id=str(old.id) if old is not None else None,
                    new_asset_id=str(new.id) if new is not None else None,
                    old_model_version=old_meta.get("model_version"),
                    new_model_version=new_meta.get("model_version"),
                    old_identity=_identity(old_meta),
                    new_identity=_identity(new_meta),
                    new_passed=new is not None and _verdict(new_meta) == "pass",
                    note=failed.get(slot, ""),
                    new_verdict=_verdict(new_meta) if new is not None else "missing",
                )
            )
        old_ids = [c.old_identity for c in comparisons if c.old_identity is not None]
        new_ids = [c.new_identity for c in comparisons if c.new_identity is not None]
        old_mean = fmean(old_ids) if old_ids else None
        new_mean = fmean(new_ids) if new_ids else None
        missing = [c.slot for c in comparisons if c.new_asset_id is None]
        failing = [c.slot for c in comparisons if c.new_verdict == "fail"]
        unmeasured = [c.slot for c in comparisons if c.new_verdict == "unmeasured"]
        if missing:
            ok, reason = (
                False,
                (
                    "incomplete: no new image for "
                    + ", ".join(f"{s} ({failed.get(s, 'not generated')})" for s in missing)
                ),
            )
        elif failing:
            ok, reason = False, "failed the consistency gate: " + ", ".join(failing)
        elif unmeasured:
            ok, reason = (
                False,
                ("not every check could be measured (a person decides): " + ", ".join(unmeasured)),
            )
        elif old_mean is not None and new_mean is not None and new_mean < old_mean - tolerance:
            ok, reason = (
                False,
                (
                    f"less consistent: mean identity {new_mean:.3f} < old {old_mean:.3f} - "
                    f"tolerance {tolerance:g}"
                ),
            )
        else:
            ok, reason = (
                True,
                (
                    "complete, every image passed, mean identity "
                    + (f"{new_mean:.3f}" if new_mean is not None else "n/a")
                    + (f" vs old {old_mean:.3f}" if old_mean is not None else "")
                    + f" (tolerance {tolerance:g})"
                ),
            )
        promoted = False
        if ok and kit.status == "active":
            reason = f"would pass ({reason}); the kit is approved (active): waits for a person"
        elif ok:
            # this run's new rows, and rows an earlier run of the same canary stored (reused)
            chosen = [a for a in new_by_slot.values() if not a.is_canonical]
            repo.promote_to_canonical(session, [a.id for a in chosen])
            for asset in chosen:
                asset.review_state = None
            promoted = bool(chosen)
        elif not ok:
            reason = f"old set kept: {reason}"
        verdict = CanaryVerdict(
            kit_id=kit_id,
            candidate_set=set_name,
            kit_status=kit.status,
            promoted=promoted,
            reason=reason,
            tolerance=tolerance,
            old_mean_identity=old_mean,
            new_mean_identity=new_mean,
            slots=comparisons,
        )
        locations = {
            c.slot: (
                _location(session, c.old_asset_id),
                _location(session, c.new_asset_id),
            )
            for c in comparisons
        }
    logger.info("model-upgrade canary of kit %s: %s", kit_id, reason)
    if reports_dir is not None:
        from avatar_pipeline.generation.upgrade_report import write_upgrade_report

        write_upgrade_report(verdict, store, locations, Path(reports_dir))
    return verdict


def _location(session: Session, asset_id: str | None) -> tuple[str, str] | None:
    if asset_id is None:
        return None
    asset = repo.get_asset(session, uuid.UUID(asset_id))
    return asset.storage_bucket, asset.storage_path
