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
