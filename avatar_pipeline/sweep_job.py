"""The sweep as a Dagster job: dead runs reaped, orphan objects and rows listed (dry run by
default) or removed (``apply: true``). Kits with a run in progress are left alone."""

import dagster as dg

from avatar_pipeline.resources import CatalogResource, ObjectStoreResource


class SweepConfig(dg.Config):
    apply: bool = False


@dg.op(description="Reap dead runs, then list (or with apply: remove) orphan objects and rows.")
def sweep_orphans(
    context: dg.OpExecutionContext,
    config: SweepConfig,
    catalog: CatalogResource,
    object_store: ObjectStoreResource,
) -> dg.Output[dict]:
    from avatar_pipeline.catalog.orphans import find_orphans, remove_orphans
    from avatar_pipeline.run_hygiene import kits_in_progress, reap_dead_runs

    reaped = reap_dead_runs(context.instance, apply=config.apply)
    busy = kits_in_progress(context.instance)
    factory = catalog.session_factory()
    store = object_store.get_store()
    report = find_orphans(factory, store, exclude_kits=busy)
    if config.apply and not report.clean:
        remove_orphans(factory, store, report)
    for line in report.lines():
        context.log.info(line)
    summary = {
        "applied": config.apply,
        "dead_runs": [r.run_id for r in reaped],
        "orphan_objects": report.objects,
        "orphan_rows": [r[0] for r in report.rows],
        "removed_objects": report.removed_objects,
        "removed_rows": report.removed_rows,
        "kept": report.kept,
    }
    return dg.Output(
        summary,
        metadata={
            "orphan_objects": len(report.objects),
            "orphan_rows": len(report.rows),
            "removed": len(report.removed_objects) + len(report.removed_rows),
            "dead_runs": len(reaped),
            "dry_run": not config.apply,
        },
    )


@dg.job(description="List (dry run) or remove orphan objects/rows and dead runs' pool slots.")
def sweep_job() -> None:
    sweep_orphans()
