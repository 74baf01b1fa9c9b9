"""A kit materialised on a Dagster instance backed by dagster-postgres, catalog on PostgreSQL."""

from __future__ import annotations

import uuid

import dagster as dg

from avatar_pipeline.catalog import repository as repo
from avatar_pipeline_tests.kit_runs import approve, materialize_kit
from avatar_pipeline_tests.pg import sqlalchemy_url, temporary_database
from avatar_pipeline_tests.pipeline_fixtures import create_kit, make_resources


def test_kit_materialises_on_postgres_backed_dagster_instance(tmp_path):
    with temporary_database("dagster") as dagster_db, temporary_database("catalog") as catalog_db:
        overrides = {
            "storage": {
                "postgres": {
                    "postgres_db": {
                        "hostname": "127.0.0.1",
                        "port": 5432,
                        "username": "postgres",
                        "password": "",
                        "db_name": dagster_db,
                        # SQLAlchemy 2.1: plain postgresql:// would select psycopg 3
                        "scheme": "postgresql+psycopg2",
                    }
                }
            }
        }
        with dg.instance_for_test(overrides=overrides) as instance:
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
            resources = make_resources(tmp_path, sqlalchemy_url(catalog_db))
            kit_id = create_kit(resources)
            result = materialize_kit(resources, instance, kit_id)
            assert result.success
            event = instance.get_latest_materialization_event(dg.AssetKey(["poses", "waving"]))
            assert event is not None and event.dagster_event.partition == kit_id
            # anchors pass on their own; the rest waits for a person (adherence not measured)
            with resources["catalog"].session() as session:
                assert len(repo.canonical_assets(session, uuid.UUID(kit_id))) == 2
            approve(resources, kit_id)
            with resources["catalog"].session() as session:
                assert len(repo.canonical_assets(session, uuid.UUID(kit_id))) == 14
            # dispose pooled connections before the databases are dropped
            resources["catalog"].session_factory().kw["bind"].dispose()


def _pooled_overrides(db: str) -> dict:
    postgres_db = {
        "hostname": "127.0.0.1",
        "port": 5432,
        "username": "postgres",
        "password": "",
        "db_name": db,
        "scheme": "postgresql+psycopg2",
    }
    return {
        f"{kind}_storage": {
            "module": "avatar_pipeline.instance_storage",
            "class": f"PooledPostgres{cls}Storage",
            "config": {"postgres_db": postgres_db},
        }
        for kind, cls in (("run", "Run"), ("event_log", "EventLog"), ("schedule", "Schedule"))
    }


def test_pooled_instance_storage_reuses_connections_and_runs_a_kit(tmp_path):
    from sqlalchemy import event

    with (
        temporary_database("dagster") as dagster_db,
        temporary_database("catalog") as catalog_db,
        dg.instance_for_test(overrides=_pooled_overrides(dagster_db)) as instance,
    ):
        assert type(instance.run_storage).__name__ == "PooledPostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PooledPostgresEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "PooledPostgresScheduleStorage"
        connects: list[int] = []
        for storage in (instance.run_storage, instance.event_log_storage):
            event.listen(storage._engine, "connect", lambda *a: connects.append(1))
        resources = make_resources(tmp_path, sqlalchemy_url(catalog_db))
        kit_id = create_kit(resources)
        portrait = dg.AssetKey(["anchor_portrait"])  # passes on its own: no gate verdict needed
        result = materialize_kit(resources, instance, kit_id, selection=[portrait])
        assert result.success
        stored = len(instance.all_logs(result.run_id))
        for _ in range(50):  # what the daemon does all day: poll runs and their events
            assert instance.get_run_by_id(result.run_id) is not None
            assert instance.get_records_for_run(result.run_id, limit=5).records
        assert stored > 10  # every event of the run and 100 reads went through the storage...
        assert len(connects) <= 4  # ...over a handful of kept connections, not one each
        event_ = instance.get_latest_materialization_event(portrait)
        assert event_ is not None and event_.dagster_event.partition == kit_id
        resources["catalog"].session_factory().kw["bind"].dispose()
        for storage in (instance.run_storage, instance.event_log_storage):
            storage._engine.dispose()
        instance.schedule_storage._engine.dispose()


def test_the_shipped_postgres_instance_yaml_loads_the_pooled_storages(tmp_path, monkeypatch):
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    (tmp_path / "dagster.yaml").write_text((root / "dagster.postgres.yaml").read_text())
    with temporary_database("dagster") as dagster_db:
        for name, value in {
            "DAGSTER_HOME": str(tmp_path),
            "DAGSTER_PG_HOST": "127.0.0.1",
            "DAGSTER_PG_USER": "postgres",
            "DAGSTER_PG_PASSWORD": "",
            "DAGSTER_PG_DB": dagster_db,
        }.items():
            monkeypatch.setenv(name, value)
        with dg.DagsterInstance.get() as instance:
            assert type(instance.run_storage).__name__ == "PooledPostgresRunStorage"
            assert type(instance.event_log_storage).__name__ == "PooledPostgresEventLogStorage"
            assert instance.get_runs_count() == 0
            for storage in (instance.run_storage, instance.event_log_storage):
                storage._engine.dispose()
            instance.schedule_storage._engine.dispose()
