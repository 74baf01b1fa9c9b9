"""``avatar-pipeline users create EMAIL [--admin]`` and ``avatar-pipeline signin-link EMAIL``."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from avatar_pipeline.settings import Settings


def _session_factory(settings: Settings):  # type: ignore[no-untyped-def]
    from avatar_pipeline.catalog.db import make_engine, make_session_factory
    from avatar_pipeline.catalog.migrate import upgrade_database

    upgrade_database(settings.catalog_url)
    engine = make_engine(settings.catalog_url)
    return engine, make_session_factory(engine)


def ensure_user(settings: Settings, email: str, *, admin: bool) -> tuple[str, bool]:
    """Create the user (or raise its role to admin); returns (role, created)."""
    from avatar_pipeline.catalog import repository as repo
    from avatar_pipeline.catalog.db import session_scope
    from avatar_pipeline.serving.sessions import find_user

    engine, factory = _session_factory(settings)
    try:
        with session_scope(factory) as session:
            user = find_user(session, email)
            if user is None:
                user = repo.create_user(session, email=email, role="admin" if admin else "user")
                return user.role, True
            if admin and user.role != "admin":
                user.role = "admin"
            return user.role, False
    finally:
        engine.dispose()


def signin_link(settings: Settings, email: str) -> str:
    """A one-time sign-in URL for an existing user (LookupError when there is none)."""
    from avatar_pipeline.catalog.db import session_scope
    from avatar_pipeline.serving.sessions import create_signin_link, find_user

    engine, factory = _session_factory(settings)
    try:
        with session_scope(factory) as session:
            user = find_user(session, email)
            if user is None:
                raise LookupError(
                    f"no user has the email {email!r}; create one first: "
                    f"avatar-pipeline users create {email} --admin"
                )
            return create_signin_link(session, settings, user)
    finally:
        engine.dispose()


def cmd_users(settings: Settings, args: argparse.Namespace) -> int:
    role, created = ensure_user(settings, args.email, admin=args.admin)
    print(f"user {args.email} {'created' if created else 'exists'} (role: {role})")
    if role == "admin":
        print(f"sign-in link for the studio: avatar-pipeline signin-link {args.email}")
    return 0


def cmd_signin_link(settings: Settings, args: argparse.Namespace) -> int:
    url = signin_link(settings, args.email)
    minutes = max(1, settings.signin_link_ttl_seconds // 60)
    print(url)
    print(f"(one-time link for {args.email}; it expires in {minutes} minutes)")
    return 0


def register(
    sub: argparse._SubParsersAction,
) -> dict[str, Callable[[Settings, argparse.Namespace], int]]:
    users = sub.add_parser("users", help="create users (admins may use the studio)")
    users_sub = users.add_subparsers(dest="action", required=True)
    create = users_sub.add_parser("create", help="create a user (idempotent; --admin promotes)")
    create.add_argument("email")
    create.add_argument("--admin", action="store_true", help="give the user the 'admin' role")

    link = sub.add_parser(
        "signin-link", help="print a one-time URL that signs a user in to the studio"
    )
    link.add_argument("email")
    return {"users": cmd_users, "signin-link": cmd_signin_link}
