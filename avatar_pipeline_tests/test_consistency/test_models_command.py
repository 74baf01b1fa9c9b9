"""`avatar-pipeline models pull` and `where`: no download ever happens here — the download
function is pointed at a fake that copies the test's own tiny checkpoint into a local
Hugging Face cache layout; `auto` is checked not to import torch without weights."""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from avatar_pipeline import cli
from avatar_pipeline.commands.models import cmd_pull, sha256_of
from avatar_pipeline.consistency.embedders import find_clip_weights
from avatar_pipeline.settings import Settings


@pytest.fixture()
def registered_tag(tiny_clip_config: str, monkeypatch: pytest.MonkeyPatch) -> str:
    import open_clip.pretrained as registry

    monkeypatch.setitem(
        registry._PRETRAINED,
        "tiny-test",
        {"pulltag": registry._pcfg(hf_hub="test-org/tiny-test-pulltag/")},
    )
    return "pulltag"


def _fake_hub(tiny_checkpoint: str, calls: list[tuple[str, tuple[str, ...]]]):  # type: ignore[no-untyped-def]
    def download(repo_id: str, filenames: tuple[str, ...], cache_dir: str | None) -> str:
        calls.append((repo_id, filenames))
        assert cache_dir
        repo = Path(cache_dir) / ("models--" + repo_id.replace("/", "--"))
        snap = repo / "snapshots" / ("1" * 40)
        snap.mkdir(parents=True, exist_ok=True)
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / "main").write_text("1" * 40)  # as huggingface_hub leaves it
        target = snap / "open_clip_pytorch_model.bin"
        target.write_bytes(Path(tiny_checkpoint).read_bytes())
        return str(target)

    return download


def _args(**kw: object) -> argparse.Namespace:
    base = {"model": "tiny-test", "pretrained": "pulltag", "sha256": None, "cache_dir": None}
    base.update(kw)
    return argparse.Namespace(**base)


def test_pull_downloads_verifies_and_says_what_auto_uses(
    registered_tag: str, tiny_clip_checkpoint: str, tmp_path: Path
) -> None:
    calls: list[tuple[str, tuple[str, ...]]] = []
    hub = tmp_path / "hub"
    assert not find_clip_weights("tiny-test", registered_tag, hub).available
    out = io.StringIO()
    code = cmd_pull(
        Settings(var_dir=tmp_path / "var"),
        _args(cache_dir=str(hub), sha256=sha256_of(tiny_clip_checkpoint)),
        download=_fake_hub(tiny_clip_checkpoint, calls),
        out=out,
    )
    text = out.getvalue()
    assert code == 0, text
    assert calls == [("test-org/tiny-test-pulltag",
                      ("open_clip_model.safetensors", "open_clip_pytorch_model.bin"))]  # fmt: skip
    assert "verified: tiny-test loads and embeds an image" in text
    assert "from now on: clip tiny-test (pulltag), weights at" in text
    status = find_clip_weights("tiny-test", registered_tag, hub)
    assert status.available and status.path and status.path.startswith(str(hub))


def test_pull_refuses_a_checksum_mismatch(
    registered_tag: str,
    tiny_clip_checkpoint: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = cmd_pull(
        Settings(var_dir=tmp_path / "var"),
        _args(cache_dir=str(tmp_path / "hub"), sha256="0" * 64),
        download=_fake_hub(tiny_clip_checkpoint, []),
        out=io.StringIO(),
    )
    assert code == 1
    assert "checksum mismatch" in capsys.readouterr().err


def test_pull_reports_a_failed_download(
    registered_tag: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def offline(repo_id: str, filenames: tuple[str, ...], cache_dir: str | None) -> str:
        raise ConnectionError("no route to huggingface.co")

    code = cmd_pull(Settings(var_dir=tmp_path / "var"), _args(cache_dir=str(tmp_path)),
                    download=offline, out=io.StringIO())  # fmt: skip
    assert code == 1
    err = capsys.readouterr().err
    assert (
        "download of test-org/tiny-test-pulltag failed" in err and "AVATAR_CLIP_PRETRAINED" in err
    )


def test_pull_of_an_unknown_tag_is_a_clear_error(
    tiny_clip_config: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def never(*_: object) -> str:
        pytest.fail("must not download")

    code = cmd_pull(Settings(var_dir=tmp_path), _args(pretrained="nosuchtag"), download=never,
                    out=io.StringIO())  # fmt: skip
    assert code == 2
    assert "no weights 'nosuchtag'" in capsys.readouterr().err


def test_where_names_the_live_scorer(
    tiny_clip_checkpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setenv("AVATAR_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-home"))
    monkeypatch.setenv("AVATAR_EMBEDDER", "auto")
    monkeypatch.delenv("AVATAR_CLIP_PRETRAINED", raising=False)
    assert cli.main(["where"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("identity scorer"))
    assert "perceptual (character-lab-bust-v5) [auto]" in line
    assert "ViT-B-32/laion2b_s34b_b79k are not on this machine" in line and "models pull" in line

    monkeypatch.setenv("AVATAR_CLIP_MODEL", "tiny-test")
    monkeypatch.setenv("AVATAR_CLIP_PRETRAINED", tiny_clip_checkpoint)
    assert cli.main(["where"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("identity scorer"))
    assert line.endswith(f"clip tiny-test ({tiny_clip_checkpoint}), weights at "
                         f"{tiny_clip_checkpoint} [auto]")  # fmt: skip

    monkeypatch.setenv("AVATAR_EMBEDDER", "perceptual")
    assert cli.main(["where"]) == 0
    assert "as configured (AVATAR_EMBEDDER=perceptual)" in capsys.readouterr().out


def test_auto_without_weights_never_imports_torch(tmp_path: Path) -> None:
    code = (
        "import sys, json\n"
        "from avatar_pipeline.consistency.embedders import load_embedder\n"
        "e = load_embedder('auto', model_name='ViT-B-32', pretrained='laion2b_s34b_b79k')\n"
        "print(json.dumps([e.info.kind, 'torch' in sys.modules, 'open_clip' in sys.modules]))\n"
    )
    env = {"HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HOME": str(tmp_path / "home"),
           "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=120, check=True)  # fmt: skip
    assert json.loads(done.stdout.strip().splitlines()[-1]) == ["perceptual", False, False]
