"""Helpers for the studio tests: a browser-like client on loopback, sign-in, CSRF tokens."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from fastapi.testclient import TestClient

from avatar_pipeline.catalog.db import session_scope
from avatar_pipeline.catalog.models import User
from avatar_pipeline.serving.config import Services
from avatar_pipeline.serving.sessions import create_signin_link

STUDIO_ORIGIN = "http://127.0.0.1:8000"
_CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')


def browser(app: object, origin: str = STUDIO_ORIGIN) -> TestClient:
    """A client that keeps cookies like a browser, on the loopback origin (no Secure cookie)."""
    return TestClient(app, base_url=origin, follow_redirects=False)  # type: ignore[arg-type]


def signin_link(
    services: Services,
    email: str,
    *,
    now: datetime | None = None,
    ttl: timedelta | None = None,
) -> str:
    """The token of a new one-time link for ``email`` (as `avatar-pipeline signin-link`)."""
    with session_scope(services.session_factory) as session:
        user = session.query(User).filter_by(email=email).one()
        url = create_signin_link(session, services.settings, user, now=now, ttl=ttl)
    return url.rsplit("/", 1)[1]


def sign_in(client: TestClient, services: Services, email: str) -> None:
    token = signin_link(services, email)
    response = client.post(f"/studio/signin/{token}")
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/studio/kits"


def csrf_of(client: TestClient, path: str = "/studio/kits") -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text
    match = _CSRF.search(page.text)
    assert match, "no CSRF token on the page"
    return match.group(1)


def stable_kit_ids(monkeypatch: object) -> None:
    """Kits the studio creates get the id the pipeline tests use for the same name (uuid5), so
    their seeds, images and gate verdicts are reproducible (see pipeline_fixtures.create_kit)."""
    import uuid

    from avatar_pipeline.catalog import repository as repo
    from avatar_pipeline_tests.pipeline_fixtures import KIT_ID_NAMESPACE

    create_kit = repo.create_kit

    def with_stable_id(session, **fields):  # type: ignore[no-untyped-def]
        fields.setdefault("kit_id", uuid.uuid5(KIT_ID_NAMESPACE, fields["name"]))
        return create_kit(session, **fields)

    monkeypatch.setattr(repo, "create_kit", with_stable_id)  # type: ignore[attr-defined]
