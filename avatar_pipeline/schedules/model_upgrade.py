"""Model-upgrade schedule: compare the provider's current model versions with the versions
recorded on each kit's canonical assets, and re-generate what an upgrade affects.

Re-generated images form one candidate set per kit (a canary, ``generation/upgrade.py``): a
draft kit moves to the new set only as a whole, when every image passes the gate and the set is
at least as consistent as the old one within a stated tolerance; an approved kit's set waits for
a person. An old-vs-new report is written beside the kit's report.
"""

import hashlib

import dagster as dg

from avatar_pipeline.assets.kit_images import MODEL_UPGRADE_TRIGGER
from avatar_pipeline.assets.provider_models import current_model_versions
from avatar_pipeline.catalog import repository as repo
from avatar_pipeline.domain.vocab import AssetType, SourceType
from avatar_pipeline.generation.slots import ALL_SLOTS, FULLBODY_SLOT, PORTRAIT
from avatar_pipeline.jobs import kit_job, observe_provider_models_job
from avatar_pipeline.resources import CatalogResource, ImageServiceResource
from avatar_pipeline.sensors.selection import kit_run_config, partitioned_kits, selection_for


def upgraded_slots(
    canonical: dict, current: dict[str, str], tried: set[str] | frozenset[str] = frozenset()
) -> list[str]:
    """Slots whose canonical image was made by a model now served at another real version.

    Versions are real ids on both sides (the provider records the pinned version or the
    ``latest_version.id`` it looked up, never Replicate's "hidden"), so an unchanged model asks
    for nothing. What derives from a re-generated anchor is re-generated with it (from the new
    anchor): a new primary anchor re-generates the whole kit, a new full body its poses.
    ``tried``: slots that already have an image of the current version (an earlier canary whose
    set was kept pending or rejected): a person decides, the schedule does not ask again.
    """
    slots = set()
    for slot, asset in canonical.items():
        if asset.source_type != SourceType.AI_GENERATED.value:
            continue
        meta = asset.generation_metadata or {}
        model, version = meta.get("model"), meta.get("model_version")
        if model in current and current[model] != version and slot not in tried:
            slots.add(slot)
    if PORTRAIT in slots:
        return [s.name for s in ALL_SLOTS]
    if FULLBODY_SLOT.name in slots:
        slots.update(s.name for s in ALL_SLOTS if s.asset_type is AssetType.POSE)
    return [s.name for s in ALL_SLOTS if s.name in slots]


@dg.schedule(
    job=kit_job,
    cron_schedule="0 3 * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Nightly: re-generate kit images made by a model version the provider has "
    "since upgraded; candidates must pass the gate before they replace canonical images.",
)
def model_upgrade_schedule(
    context: dg.ScheduleEvaluationContext,
    catalog: CatalogResource,
    image_service: ImageServiceResource,
):
    current = {model: version for model, version in current_model_versions(image_service).values()}
    versions_tag = hashlib.sha256(repr(sorted(current.items())).encode()).hexdigest()[:12]
    requests = []
    with catalog.session() as session:
        for kit in partitioned_kits(context.instance, session):
            tried = {
                repo.slot_of(a)
                for a in repo.list_assets(session, kit.id)
                if not a.is_canonical
                and (a.generation_metadata or {}).get("model") in current
                and current[a.generation_metadata["model"]]
                == a.generation_metadata.get("model_version")
            }
            slots = upgraded_slots(repo.canonical_assets(session, kit.id), current, tried)
            if not slots:
                continue
            requests.append(
                dg.RunRequest(
                    partition_key=str(kit.id),
                    run_key=f"{MODEL_UPGRADE_TRIGGER}:{kit.id}:{versions_tag}",
                    asset_selection=selection_for(slots),
                    run_config=kit_run_config(MODEL_UPGRADE_TRIGGER),
                    tags={"avatar/trigger": MODEL_UPGRADE_TRIGGER, "avatar/models": versions_tag},
                )
            )
    if not requests:
        return dg.SkipReason(f"every kit is on the current model versions ({current})")
    return requests


observe_provider_models_schedule = dg.ScheduleDefinition(
    name="observe_provider_models_schedule",
    job=observe_provider_models_job,
    cron_schedule="50 2 * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Nightly, before the upgrade check: observe the provider's model versions.",
)
