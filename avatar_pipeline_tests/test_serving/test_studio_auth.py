"""Studio sign-in: one-time links (used once, expire), session cookies, CSRF, admins only."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from avatar_pipeline.catalog.db import session_scope
from avatar_pipeline.catalog.models import AvatarKit, SigninLink, StudioSession
from avatar_pipeline.serving.sessions import SESSION_COOKIE, SigninLinkError, redeem_signin_link
from avatar_pipeline_tests.test_serving.conftest import Api
from avatar_pipeline_tests.test_serving.studio_helpers import (
    browser,
    csrf_of,
    sign_in,
    signin_link,
)

KIT_FORM = {
    "name": "Default",
    "new_character": "Mika",
    "appearance_prompt": "young woman, long silver hair, blue eyes, red jacket",
    "style_prompt": "anime style, clean line art",
    "generate": "no",
}


def _kits(api: Api) -> int:
    with session_scope(api.services.session_factory) as session:
        return session.scalar(select(func.count()).select_from(AvatarKit)) or 0


def test_a_link_signs_in_once_and_is_stored_hashed(api_any_db: Api) -> None:
    api = api_any_db
    client = browser(api.client.app)
    token = signin_link(api.services, api.admin.email)

    confirm = client.get(f"/studio/signin/{token}")  # opening the link spends nothing
    assert confirm.status_code == 200
    assert api.admin.email in confirm.text
    assert confirm.headers["referrer-policy"] == "same-origin"  # the link never leaves

    signed = client.post(f"/studio/signin/{token}")
    assert signed.status_code == 303
    cookie = signed.headers["set-cookie"]
    assert f"{SESSION_COOKIE}=" in cookie
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    assert client.get("/studio/kits").status_code == 200

    again = browser(api.client.app).post(f"/studio/signin/{token}")
    assert again.status_code == 410
    assert "already used" in again.text
    assert browser(api.client.app).get(f"/studio/signin/{token}").status_code == 410

    with session_scope(api.services.session_factory) as session:
        stored = session.scalars(select(SigninLink.token_hash)).all()
        sessions = session.scalars(select(StudioSession.token_hash)).all()
    assert token not in stored and len(stored[0]) == 64
    assert client.cookies[SESSION_COOKIE] not in sessions


def test_an_expired_or_unknown_link_is_refused(api: Api) -> None:
    past = datetime.now(UTC) - timedelta(hours=1)
    token = signin_link(api.services, api.admin.email, now=past, ttl=timedelta(minutes=15))
    client = browser(api.client.app)
    expired = client.post(f"/studio/signin/{token}")
    assert expired.status_code == 410 and "expired" in expired.text
    assert SESSION_COOKIE not in client.cookies
    unknown = client.post("/studio/signin/not-a-real-token")
    assert unknown.status_code == 410 and "not known" in unknown.text
    assert client.get("/studio/kits").status_code == 401


def test_concurrent_redemptions_of_one_link_sign_in_once(api_any_db: Api) -> None:
    api = api_any_db
    token = signin_link(api.services, api.admin.email)
    barrier = threading.Barrier(6)
    won: list[str] = []
    lost: list[str] = []

    def redeem() -> None:
        barrier.wait()
        try:
            with session_scope(api.services.session_factory, write=True) as session:
                redeem_signin_link(session, api.settings, token)
            won.append("ok")
        except SigninLinkError as exc:
            lost.append(str(exc))

    threads = [threading.Thread(target=redeem) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(won) == 1, (won, lost)
    assert len(lost) == 5 and all("already used" in m for m in lost)
    with session_scope(api.services.session_factory) as session:
        assert session.scalar(select(func.count()).select_from(StudioSession)) == 1


def test_the_cookie_is_secure_off_loopback(api: Api) -> None:
    token = signin_link(api.services, api.admin.email)
    client = browser(api.client.app, origin="http://studio.example.com")
    response = client.post(f"/studio/signin/{token}")
    assert response.status_code == 303
    assert "Secure" in response.headers["set-cookie"]


def test_not_signed_in_and_non_admins_are_refused(api: Api) -> None:
    anonymous = browser(api.client.app)
    page = anonymous.get("/studio/kits")
    assert page.status_code == 401
    assert "avatar-pipeline signin-link" in page.text
    assert anonymous.get(f"/studio/requests/{api.admin.id}.json").status_code == 401
    assert anonymous.post("/studio/kits", data=KIT_FORM).status_code == 401

    user = browser(api.client.app)
    sign_in(user, api.services, api.user.email)
    refused = user.get("/studio/kits")
    assert refused.status_code == 403
    assert "admins" in refused.text
    assert user.get("/reports/index.html").status_code == 403
    # a non-admin with a valid session and a valid CSRF token still cannot write
    from avatar_pipeline.serving.sessions import csrf_token_for

    csrf = csrf_token_for(api.settings, user.cookies[SESSION_COOKIE])
    assert user.post("/studio/kits", data={**KIT_FORM, "csrf_token": csrf}).status_code == 403
    assert _kits(api) == 0


def test_state_changing_requests_need_the_csrf_token(api: Api) -> None:
    client = browser(api.client.app)
    sign_in(client, api.services, api.admin.email)
    csrf = csrf_of(client)

    assert client.post("/studio/kits", data=KIT_FORM).status_code == 403  # no token
    bad = client.post("/studio/kits", data={**KIT_FORM, "csrf_token": "0" * 64})
    assert bad.status_code == 403 and "CSRF" in bad.text
    cross = client.post(
        "/studio/kits",
        data={**KIT_FORM, "csrf_token": csrf},
        headers={"Origin": "http://evil.example"},
    )
    assert cross.status_code == 403
    # another session's token does not work in this one
    other = browser(api.client.app)
    sign_in(other, api.services, api.admin.email)
    assert other.post("/studio/kits", data={**KIT_FORM, "csrf_token": csrf}).status_code == 403
    assert _kits(api) == 0

    created = client.post("/studio/kits", data={**KIT_FORM, "csrf_token": csrf})
    assert created.status_code == 303, created.text
    assert _kits(api) == 1


def test_signing_out_ends_the_session_on_the_server(api: Api) -> None:
    client = browser(api.client.app)
    sign_in(client, api.services, api.admin.email)
    stolen = client.cookies[SESSION_COOKIE]
    out = client.post("/studio/signout", data={"csrf_token": csrf_of(client)})
    assert out.status_code == 303
    replay = browser(api.client.app)
    replay.cookies.set(SESSION_COOKIE, stolen)
    assert replay.get("/studio/kits").status_code == 401


def test_a_sign_in_posted_from_another_site_is_refused(api: Api) -> None:
    token = signin_link(api.services, api.admin.email)
    client = browser(api.client.app)
    forged = client.post(f"/studio/signin/{token}", headers={"Origin": "http://evil.example"})
    assert forged.status_code == 403
    assert SESSION_COOKIE not in client.cookies
    assert client.post(f"/studio/signin/{token}").status_code == 303  # the link still works
