"""What only the local-directory backend does: files on disk, atomic writes, symlink guard."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from avatar_pipeline.storage.base import StorageError
from avatar_pipeline.storage.keys import InvalidKeyError
from avatar_pipeline.storage.local import LocalObjectStore


def _files_under(directory: Path) -> list[str]:
    return sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file())


def test_objects_are_files_under_root_bucket_path(local_store: LocalObjectStore) -> None:
    local_store.put("avatars", "kit1/anchors/portrait_a1.png", b"portrait")
    assert (local_store.root / "avatars/kit1/anchors/portrait_a1.png").read_bytes() == b"portrait"
    # Only the object and its content-type record; no temporary files are left behind.
    assert _files_under(local_store.root) == [
        ".meta/avatars/kit1/anchors/portrait_a1.png",
        "avatars/kit1/anchors/portrait_a1.png",
    ]
    assert local_store.list("avatars") == ["kit1/anchors/portrait_a1.png"]


def test_rejected_keys_write_nothing_anywhere(
    local_store: LocalObjectStore, tmp_path: Path
) -> None:
    for path in ("../x", "../../outside.png", "/tmp/evil.png", "a//b", "kit1/../../x"):
        with pytest.raises(InvalidKeyError):
            local_store.put("avatars", path, b"evil")
    assert _files_under(tmp_path) == []


def test_symlink_out_of_the_root_is_refused(local_store: LocalObjectStore, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.png").write_bytes(b"not yours")
    (local_store.root / "avatars").mkdir(parents=True)
    (local_store.root / "avatars" / "kit1").symlink_to(outside, target_is_directory=True)

    with pytest.raises(InvalidKeyError, match="outside the store root"):
        local_store.put("avatars", "kit1/anchors/portrait_a1.png", b"escaped")
    with pytest.raises(InvalidKeyError, match="outside the store root"):
        local_store.get("avatars", "kit1/secret.png")
    with pytest.raises(InvalidKeyError, match="outside the store root"):
        local_store.list("avatars", "kit1/")
    assert _files_under(outside) == ["secret.png"]


def test_failed_write_keeps_the_previous_object_and_leaves_no_temp_file(
    local_store: LocalObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = "kit1/anchors/portrait_a1.png"
    local_store.put("avatars", path, b"version one")

    def disk_full(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(StorageError, match="No space left on device"):
        local_store.put("avatars", path, b"version two")
    monkeypatch.undo()

    assert local_store.get("avatars", path) == b"version one"
    assert not [p for p in local_store.root.rglob(".tmp-*")]


def test_describe_and_repr_name_the_directory_not_the_secret(
    local_store: LocalObjectStore,
) -> None:
    assert local_store.describe() == f"local directory {local_store.root}"
    assert local_store.root.is_absolute()
    assert "test-signing-secret" not in repr(local_store)
    assert "test-signing-secret" not in local_store.describe()


def test_an_empty_signing_secret_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="AVATAR_SIGNING_SECRET"):
        LocalObjectStore(tmp_path, signing_secret="")
