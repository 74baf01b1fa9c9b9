"""A tiny OpenCLIP model registered with open_clip and saved as a checkpoint the tests own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

TINY_MODEL = "tiny-test"
TINY_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16},
    "text_cfg": {
        "context_length": 77,
        "vocab_size": 49408,
        "width": 64,
        "heads": 2,
        "layers": 2,
    },
}


@pytest.fixture(scope="session")
def tiny_clip_config(tmp_path_factory: pytest.TempPathFactory) -> str:
    import open_clip

    folder = tmp_path_factory.mktemp("open_clip_configs")
    (folder / f"{TINY_MODEL}.json").write_text(json.dumps(TINY_CONFIG))
    open_clip.add_model_config(folder / f"{TINY_MODEL}.json")
    return TINY_MODEL


@pytest.fixture(scope="session")
def tiny_clip_checkpoint(tiny_clip_config: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Random-init weights of the tiny model, saved the way a real checkpoint is."""
    import open_clip
    import torch

    torch.manual_seed(0)
    model, _, _ = open_clip.create_model_and_transforms(tiny_clip_config, pretrained=None)
    path = tmp_path_factory.mktemp("weights") / "tiny-test.pt"
    torch.save(model.state_dict(), path)
    return str(path)


@pytest.fixture()
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "embeddings"
