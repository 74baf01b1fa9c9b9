"""`avatar-pipeline users create EMAIL [--admin]` and `avatar-pipeline signin-link EMAIL`."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from avatar_pipeline.catalog.db import make_engine, make_session_factory, session_scope
from avatar_pipeline.catalog.models import SigninLink, User
from avatar_pipeline.cli import main
from avatar_pipeline.serving.sessions import SigninLinkError, hash_token, redeem_signin_link
from avatar_pipeline.settings import Settings


def test_users_and_signin_link_commands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AVATAR_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("AVATAR_PUBLIC_BASE_URL", "https://studio.example.com")

    assert main(["users", "create", "ops@example.com"]) == 0
    assert "created (role: user)" in capsys.readouterr().out
    assert main(["users", "create", "ops@example.com", "--admin"]) == 0  # promotes, no duplicate
    assert "exists (role: admin)" in capsys.readouterr().out

    assert main(["signin-link", "ops@example.com"]) == 0
    url = capsys.readouterr().out.splitlines()[0]
    assert url.startswith("https://studio.example.com/studio/signin/")
    token = url.rsplit("/", 1)[1]

    assert main(["signin-link", "nobody@example.com"]) == 1
    assert "users create nobody@example.com --admin" in capsys.readouterr().err

    settings = Settings()
    engine = make_engine(settings.catalog_url)
    try:
        factory = make_session_factory(engine)
        with session_scope(factory) as session:
            users = session.scalars(select(User)).all()
            assert [(u.email, u.role) for u in users] == [("ops@example.com", "admin")]
            assert session.scalars(select(SigninLink.token_hash)).all() == [hash_token(token)]
            user, _cookie = redeem_signin_link(session, settings, token)
            assert user.email == "ops@example.com"
        with session_scope(factory) as session, pytest.raises(SigninLinkError):
            redeem_signin_link(session, settings, token)
    finally:
        engine.dispose()
