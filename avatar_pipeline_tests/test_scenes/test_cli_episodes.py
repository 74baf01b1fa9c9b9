"""``avatar-pipeline episodes create|say|scene`` (with ``users create``) on a temp catalog."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from avatar_pipeline.catalog.db import make_engine, make_session_factory, session_scope
from avatar_pipeline.catalog.models import EpisodeMessage, SceneImage
from avatar_pipeline.cli import main
from avatar_pipeline.settings import Settings


@pytest.fixture
def local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AVATAR_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("AVATAR_EMBEDDER", "perceptual")
    return Settings(_env_file=None)  # type: ignore[call-arg]


def test_create_say_and_draw_a_scene(local: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    from avatar_pipeline.catalog import repository as repo
    from avatar_pipeline.catalog.migrate import upgrade_database

    upgrade_database(local.catalog_url)
    engine = make_engine(local.catalog_url)
    with session_scope(make_session_factory(engine)) as session:
        repo.create_character(session, name="Mio")
    assert main(["users", "create", "mio-fan@example.com"]) == 0
    capsys.readouterr()

    assert main(["episodes", "create", "--user", "mio-fan@example.com", "--character", "Mio"]) == 0
    episode_id = uuid.UUID(capsys.readouterr().out.strip())
    assert main(["episodes", "say", str(episode_id), "Shall we go to the beach?"]) == 0
    assert (
        main(["episodes", "say", str(episode_id), "Yes!! I'm so excited 🎉", "--role", "assistant"])
        == 0
    )
    capsys.readouterr()
    assert main(["episodes", "scene", str(episode_id), "--size", "256"]) == 0
    out = capsys.readouterr().out
    assert "emotion            excitement" in out and "writer             offline" in out

    with session_scope(make_session_factory(engine)) as session:
        assert session.query(EpisodeMessage).count() == 2
        [scene] = session.query(SceneImage).all()
        assert scene.episode_id == episode_id and scene.avatar_kit_id is None
    engine.dispose()


def test_unknown_user_or_character_is_a_clear_error(
    local: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["episodes", "create", "--user", "nobody@example.com", "--character", "X"]) == 1
    assert "users create nobody@example.com" in capsys.readouterr().err
    assert main(["users", "create", "someone@example.com"]) == 0
    assert main(["episodes", "create", "--user", "someone@example.com", "--character", "X"]) == 1
    assert "no character is named 'X'" in capsys.readouterr().err
    assert main(["episodes", "say", "not-a-uuid", "hello"]) == 1
