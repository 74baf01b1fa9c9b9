"""Per-kit consistency reports (HTML + JSON + contact sheet) and the fleet summary.

Each report records the kit's status and a fingerprint of the catalog state it shows
(``catalog.kit_state``); ``report_refresh_sensor`` re-builds a report whose fingerprint no
longer matches (an image changed, a person chose or rejected one, the kit was approved), and
the fleet index after any kit report. The report files are served by the API app under
``/reports/{kit_id}/...`` (admin session); the metadata links them and the kit's studio page.
"""

import hashlib
import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import dagster as dg

from avatar_pipeline.assets import groups
from avatar_pipeline.assets.fleet_runs import FLEET_BACKFILL_POLICY
from avatar_pipeline.assets.kit_images import KIT_IMAGE_SPECS
from avatar_pipeline.assets.partitions import KitRef, kit_for_run, kit_partitions, lookup_kit
from avatar_pipeline.assets.score_metadata import fleet_url, kit_urls, url_metadata
from avatar_pipeline.catalog import repository as repo
from avatar_pipeline.catalog.candidates import candidates_by_slot, pending_candidate_sets
from avatar_pipeline.catalog.kit_lookup import KitLookupError
from avatar_pipeline.catalog.kit_state import kit_state_fingerprint, kit_state_fingerprints
from avatar_pipeline.generation.reporting import write_fleet_report, write_kit_report_for
from avatar_pipeline.resources import CatalogResource, ConsistencyResource, ObjectStoreResource
from avatar_pipeline.settings import get_settings

STATE_KEY = "catalog_state"
REPORT_THREADS = 2  # reports written at once in a run over several kits


def report_args(
    catalog: CatalogResource, object_store: ObjectStoreResource, consistency: ConsistencyResource
) -> dict:
    embedder = consistency.get_embedder()
    return {
        "session_factory": catalog.session_factory(),
        "store": object_store.get_store(),
        "embedder": embedder.info,
        "thresholds": consistency.get_thresholds(),
        "reports_dir": Path(consistency.reports_dir),
    }


def public_base_url(object_store: ObjectStoreResource) -> str:
    """Where the API app answers: the local store's setting, else AVATAR_PUBLIC_BASE_URL."""
    return getattr(object_store, "public_base_url", None) or get_settings().public_base_url


@dg.asset(
    group_name=groups.REPORTS,
    partitions_def=kit_partitions,
    deps=[spec.key for spec in KIT_IMAGE_SPECS],
    kinds={"html"},
    # the same policy as kit_images, so a fleet backfill writes each run's reports in that
    # run (one more step) instead of one report run per kit afterwards
    backfill_policy=FLEET_BACKFILL_POLICY,
)
def consistency_report(
    context: dg.AssetExecutionContext,
    catalog: CatalogResource,
    object_store: ObjectStoreResource,
    consistency: ConsistencyResource,
) -> dg.MaterializeResult:
    """The kit's consistency report: every image with its scores against the thresholds, the
    kit's status, and what waits for a person. A run over several kits (a fleet backfill)
    writes every kit's report, each partition with its own metadata."""
    if context.has_partition_key_range and len(context.partition_keys) > 1:
        return _reports_for_range(context, catalog, object_store, consistency)
    kit = kit_for_run(context, catalog)
    return dg.MaterializeResult(metadata=_write_report(context, kit, catalog, object_store,
                                                       consistency))  # fmt: skip


def _write_report(
    context: dg.AssetExecutionContext,
    kit: KitRef,
    catalog: CatalogResource,
    object_store: ObjectStoreResource,
    consistency: ConsistencyResource,
) -> dict[str, Any]:
    """Write one kit's report and log it; its materialisation metadata."""
    metadata, line = _report(kit, catalog, object_store, consistency)
    context.log.info(line)
    return metadata


def _report(
    kit: KitRef,
    catalog: CatalogResource,
    object_store: ObjectStoreResource,
    consistency: ConsistencyResource,
) -> tuple[dict[str, Any], str]:
    """Write one kit's report (safe on a worker thread); (metadata, a line for the log)."""
    with catalog.session() as session:
        state = kit_state_fingerprint(session, kit.id)  # before reading: a later change is seen
        slots = candidates_by_slot(session, kit.id)
        waiting = sum(len(s.pending) for s in slots.values())
        sets = sorted(pending_candidate_sets(session, kit.id))
        status = repo.get_kit(session, kit.id).status
    result = write_kit_report_for(kit.id, **report_args(catalog, object_store, consistency))
    urls = kit_urls(public_base_url(object_store), kit.id)
    metadata: dict[str, Any] = {
        "kit_name": kit.name,
        "kit_id": kit.id,
        "kit_status": status,
        "summary": dg.MetadataValue.md(result.markdown),
        **url_metadata(urls),
        "report_file": dg.MetadataValue.path(str(result.files.html)),
        "canonical_slots": result.canonical_slots,
        "failing_slots": result.failing_slots,
        "pending_candidates": waiting,
        "pending_candidate_sets": ", ".join(sets) if sets else "none",
        STATE_KEY: state,
    }
    if not math.isnan(result.min_identity):
        metadata["min_identity"] = dg.MetadataValue.float(result.min_identity)
    line = (
        f"report for kit {kit.label()}: {status}, {result.canonical_slots} canonical, "
        f"{waiting} waiting for a person"
    )
    return metadata, line


def _reports_for_range(
    context: dg.AssetExecutionContext,
    catalog: CatalogResource,
    object_store: ObjectStoreResource,
    consistency: ConsistencyResource,
) -> dg.MaterializeResult:
    """Every kit's report of a run over several kit partitions. A partition that names no kit
    is listed and fails the step after the others' reports are written."""
    unknown: list[str] = []
    kits: list[tuple[str, KitRef]] = []
    for key in context.partition_keys:
        try:
            with catalog.session() as session:
                kits.append((key, lookup_kit(session, key)))
        except KitLookupError as exc:
            unknown.append(f"{key}: {exc}")
    # the reports are independent; drawing contact sheets and thumbnails releases the GIL
    with ThreadPoolExecutor(max_workers=REPORT_THREADS) as pool:
        written = list(
            pool.map(lambda item: _report(item[1], catalog, object_store, consistency), kits)
        )
    for (key, _), (metadata, line) in zip(kits, written, strict=True):
        context.log.info(line)
        context.add_asset_metadata(metadata, partition_key=key)
    if unknown:
        raise dg.Failure(
            description=f"{len(unknown)} partition(s) of this run name no kit; the other "
            f"{len(written)} reports are written.",
            metadata={"unknown": dg.MetadataValue.md("\n".join(f"- {u}" for u in unknown))},
            allow_retries=False,
        )
    return dg.MaterializeResult(metadata={"kits_in_run": len(written)})


@dg.asset(group_name=groups.REPORTS, deps=[consistency_report], kinds={"html"})
def fleet_consistency(
    catalog: CatalogResource, object_store: ObjectStoreResource, consistency: ConsistencyResource
) -> dg.MaterializeResult:
    """Every kit's consistency at a glance."""
    with catalog.session() as session:
        state = fleet_state(kit_state_fingerprints(session))
    index, markdown, n = write_fleet_report(**report_args(catalog, object_store, consistency))
    return dg.MaterializeResult(
        metadata={
            "kits": n,
            "summary": dg.MetadataValue.md(markdown),
            "index": dg.MetadataValue.url(fleet_url(public_base_url(object_store))),
            "index_file": dg.MetadataValue.path(str(index)),
            STATE_KEY: state,
        }
    )


def fleet_state(fingerprints: dict[str, str]) -> str:
    text = "\n".join(f"{k}={v}" for k, v in sorted(fingerprints.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
