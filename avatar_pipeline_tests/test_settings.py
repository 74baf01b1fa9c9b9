"""Settings: embedded defaults, secrets kept out of reprs, default secret refused in production."""

from __future__ import annotations

import dagster as dg
import pytest
from pydantic import ValidationError

from avatar_pipeline.cli import main
from avatar_pipeline.resources import (
    LocalObjectStoreResource,
    OfflineImageServiceResource,
    ReplicateImageServiceResource,
    S3ObjectStoreResource,
    resources_for_environment,
)
from avatar_pipeline.settings import Settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for name in (
        "AVATAR_ENVIRONMENT",
        "AVATAR_SIGNING_SECRET",
        "REPLICATE_API_TOKEN",
        "AVATAR_DATABASE_URL",
        "AVATAR_IMAGE_PROVIDER",
        "AVATAR_STORAGE_BACKEND",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no .env file, var/ under tmp


def test_embedded_defaults_need_no_accounts(tmp_path):
    settings = Settings()
    assert settings.catalog_url == f"sqlite:///{tmp_path / 'var' / 'catalog.db'}"
    assert settings.local_store_root == tmp_path / "var" / "objects"
    assert settings.image_provider == "offline" and settings.storage_backend == "local"
    resources = resources_for_environment(settings)
    assert isinstance(resources["image_service"], OfflineImageServiceResource)
    assert isinstance(resources["object_store"], LocalObjectStoreResource)


def test_default_signing_secret_is_refused_in_production(monkeypatch):
    monkeypatch.setenv("AVATAR_ENVIRONMENT", "production")
    with pytest.raises(ValidationError, match="AVATAR_SIGNING_SECRET is the development default"):
        Settings()
    monkeypatch.setenv("AVATAR_SIGNING_SECRET", "a-real-secret-of-some-length-0123456789")
    assert Settings().environment == "production"


def test_secrets_never_appear_in_reprs(monkeypatch):
    monkeypatch.setenv("AVATAR_SIGNING_SECRET", "sentinel-signing-secret")
    monkeypatch.setenv("REPLICATE_API_TOKEN", "r8_sentinel_token")
    settings = Settings()
    assert settings.replicate_api_token.get_secret_value() == "r8_sentinel_token"
    for text in (repr(settings), str(settings), str(settings.model_dump())):
        assert "sentinel-signing-secret" not in text and "r8_sentinel_token" not in text


def test_production_resources_take_secrets_from_the_environment(monkeypatch):
    monkeypatch.setenv("AVATAR_ENVIRONMENT", "production")
    monkeypatch.setenv("AVATAR_SIGNING_SECRET", "sentinel-signing-secret")
    monkeypatch.setenv("REPLICATE_API_TOKEN", "r8_sentinel_token")
    monkeypatch.setenv("AVATAR_IMAGE_PROVIDER", "replicate")
    monkeypatch.setenv("AVATAR_STORAGE_BACKEND", "s3")
    monkeypatch.setenv("AVATAR_DATABASE_URL", "postgresql+psycopg2://app@db:5432/avatars")
    resources = resources_for_environment()
    image_service = resources["image_service"]
    assert isinstance(image_service, ReplicateImageServiceResource)
    assert isinstance(resources["object_store"], S3ObjectStoreResource)
    assert resources["catalog"].auto_migrate is False  # production migrates explicitly
    # Dagster keeps an EnvVar reference, not the value, in the resource's config
    assert isinstance(image_service._get_non_default_public_field_values()["api_token"], dg.EnvVar)


def test_cli_where_prints_locations_without_secrets(capsys, monkeypatch):
    monkeypatch.setenv("AVATAR_DATABASE_URL", "postgresql+psycopg2://app:pa55word@db:5432/avatars")
    assert main(["where"]) == 0
    out = capsys.readouterr().out
    assert "postgresql+psycopg2://app:***@db:5432/avatars" in out
    assert "pa55word" not in out and "local directory" in out
