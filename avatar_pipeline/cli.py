"""``avatar-pipeline``: database, legacy migration, demo, kits, reports, where things live."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from avatar_pipeline.instance_home import dagster_home as _dagster_home
from avatar_pipeline.settings import Settings


def cmd_where(settings: Settings, _: argparse.Namespace) -> int:
    from avatar_pipeline.storage.factory import build_object_store

    print(f"environment      {settings.environment}")
    print(f"catalog          {_redact(settings.catalog_url)}")
    print(f"object store     {build_object_store(settings).describe()}")
    print(f"image provider   {settings.image_provider}")
    print(
        f"embedder         {settings.embedder} ({settings.clip_model}, {settings.clip_pretrained})"
    )
    from avatar_pipeline.consistency.embedders.weights import describe_live_scorer

    live = describe_live_scorer(settings.embedder, settings.clip_model, settings.clip_pretrained)
    print(f"identity scorer  {live}")
    if settings.thresholds_file:
        print(f"thresholds file  {settings.thresholds_file}")
    print(f"image cache      {settings.image_cache_dir}")
    print(f"embedding cache  {settings.embedding_cache_dir}")
    print(f"reports          {settings.reports_dir}")
    print(f"dagster home     {os.environ.get('DAGSTER_HOME') or (settings.var_dir / 'dagster')}")
    return 0


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def cmd_db(settings: Settings, args: argparse.Namespace) -> int:
    from avatar_pipeline.catalog.migrate import (
        current_revision,
        downgrade_database,
        upgrade_database,
    )

    if args.action == "upgrade":
        upgrade_database(settings.catalog_url, args.revision or "head")
    elif args.action == "downgrade":
        downgrade_database(settings.catalog_url, args.revision or "-1")
    print(f"catalog at revision {current_revision(settings.catalog_url)}")
    return 0


def cmd_migrate_legacy(settings: Settings, args: argparse.Namespace) -> int:
    from avatar_pipeline.catalog.db import make_engine, make_session_factory
    from avatar_pipeline.catalog.legacy import migrate_legacy_avatars
    from avatar_pipeline.catalog.migrate import upgrade_database
    from avatar_pipeline.storage.factory import build_object_store

    upgrade_database(settings.catalog_url)
    factory = make_session_factory(make_engine(settings.catalog_url))
    report = migrate_legacy_avatars(
        factory,
        build_object_store(settings),
        base_dir=Path(args.base_dir) if args.base_dir else None,
    )
    print(report)
    return 1 if getattr(report, "errors", None) else 0


def cmd_kits(settings: Settings, args: argparse.Namespace) -> int:
    from avatar_pipeline.catalog import repository as repo
    from avatar_pipeline.catalog.db import make_engine, make_session_factory, session_scope
    from avatar_pipeline.catalog.migrate import upgrade_database

    upgrade_database(settings.catalog_url)
    factory = make_session_factory(make_engine(settings.catalog_url))
    with session_scope(factory) as session:
        if args.action == "list":
            for kit in repo.list_kits(session):
                canonical = repo.canonical_assets(session, kit.id)
                print(f"{kit.id}  {kit.status:8}  {len(canonical):2} canonical  {kit.name}")
        elif args.action == "approve":
            from avatar_pipeline.catalog.kit_lookup import resolve_kit

            kit = repo.approve_kit(session, resolve_kit(session, args.kit_id).id)
            print(f"kit {kit.id} ({kit.name}) is {kit.status}")
        elif args.action == "request":
            from avatar_pipeline.catalog.kit_lookup import resolve_kit

            kit = resolve_kit(session, args.kit_id)
            request = repo.request_generation(
                session,
                kit_id=kit.id,
                scope=args.scope,
                slots=args.slot or None,
                new_take=args.new_take,
            )
            what = f"a new take of {args.slot[0]}" if args.new_take else "generation"
            print(
                f"{what} requested for kit {kit.name!r} (request {request.id}, pending); the kit "
                "sensor picks it up"
                + (
                    "; the take waits next to the current image for you to choose"
                    if args.new_take
                    else ""
                )
            )
    return 0


def cmd_report(settings: Settings, args: argparse.Namespace) -> int:
    from avatar_pipeline.assets.reports import report_args
    from avatar_pipeline.generation.reporting import write_fleet_report, write_kit_report_for
    from avatar_pipeline.resources import resources_for_environment

    resources = resources_for_environment(settings)
    kwargs = report_args(resources["catalog"], resources["object_store"], resources["consistency"])
    if args.kit_id:
        result = write_kit_report_for(args.kit_id, **kwargs)
        print(result.markdown)
        print(f"\nreport: {result.files.html}")
    else:
        index, markdown, _ = write_fleet_report(**kwargs)
        print(markdown)
        print(f"\nfleet summary: {index}")
    return 0


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from avatar_pipeline.demo_run import run_demo

    home = _dagster_home(settings)
    return run_demo(settings, dagster_home=home, approve=not args.no_approve)


def cmd_token(settings: Settings, args: argparse.Namespace) -> int:
    from avatar_pipeline.catalog.migrate import upgrade_database
    from avatar_pipeline.serving.security import issue_token

    upgrade_database(settings.catalog_url)
    print(issue_token(settings, args.email))
    return 0


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from avatar_pipeline.serving.security import serve_bind_check

    refusal, warning = serve_bind_check(settings, args.host)
    if refusal:
        print(refusal, file=sys.stderr)
        return 2
    if warning:
        print(warning, file=sys.stderr)
    uvicorn.run("avatar_pipeline.serving.main:app", host=args.host, port=args.port)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="avatar-pipeline", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("where", help="print where the catalog, objects, caches and reports live")

    db = sub.add_parser("db", help="create/upgrade/downgrade the catalog database")
    db.add_argument("action", choices=["upgrade", "downgrade", "current"])
    db.add_argument("revision", nargs="?")

    legacy = sub.add_parser("migrate-legacy", help="the spec's data migration (idempotent)")
    legacy.add_argument("--base-dir", help="directory that relative avatar_url paths are under")

    kits = sub.add_parser("kits", help="list, approve, or request generation of kits")
    kits.add_argument("action", choices=["list", "approve", "request"])
    kits.add_argument("kit_id", nargs="?", help="the kit's id or its exact name")
    kits.add_argument("--scope", default="kit", choices=["kit", "anchors", "expressions", "poses"])
    kits.add_argument("--slot", action="append", help="slot name, e.g. expression:shy")
    kits.add_argument(
        "--new-take",
        action="store_true",
        help="with one --slot: a new take (new seed, paid once) that waits for a person to "
        "choose it; without it an unchanged slot returns the image already made",
    )

    report = sub.add_parser("report", help="write a kit's report (or the fleet summary)")
    report.add_argument("kit_id", nargs="?")

    demo = sub.add_parser("demo", help="materialise the demo kits end to end (embedded defaults)")
    demo.add_argument("--no-approve", action="store_true")

    token = sub.add_parser("token", help="issue an API bearer token for an existing user")
    token.add_argument("email")

    serve = sub.add_parser("serve", help="run the scene-serving API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    for module in _command_modules():
        COMMANDS.update(module.register(sub))
    return parser


# Command groups that live in their own modules (avatar_pipeline/commands/<group>.py); each
# exposes ``register(subparsers) -> {command name: handler(settings, args) -> int}``.
COMMAND_MODULES = (
    "avatar_pipeline.commands.consistency",
    "avatar_pipeline.commands.models",
    "avatar_pipeline.commands.users",
    "avatar_pipeline.commands.episodes",
    "avatar_pipeline.commands.fleet",
    "avatar_pipeline.commands.sweep",
)


def _command_modules() -> list[Any]:
    import importlib

    found = []
    for name in COMMAND_MODULES:
        try:
            found.append(importlib.import_module(name))
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
    return found


COMMANDS = {
    "where": cmd_where,
    "db": cmd_db,
    "migrate-legacy": cmd_migrate_legacy,
    "kits": cmd_kits,
    "report": cmd_report,
    "demo": cmd_demo,
    "token": cmd_token,
    "serve": cmd_serve,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "kits" and args.action in ("approve", "request") and not args.kit_id:
        print(
            "avatar-pipeline kits approve|request needs a kit id (see `kits list`)", file=sys.stderr
        )
        return 2
    settings = Settings()
    try:
        return COMMANDS[args.command](settings, args)
    except Exception as exc:  # one clear line for a person, not a traceback
        from avatar_pipeline.catalog.errors import CatalogError

        if isinstance(exc, CatalogError | ValueError | LookupError):
            print(f"error: {exc}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    raise SystemExit(main())
