"""Are the configured OpenCLIP weights on this machine? Answered without importing torch.

``auto`` asks this first: when the answer is no, it uses the perceptual embedder at once and
never pays for importing torch/open_clip (seconds and hundreds of MB on every run). The check
only looks at files: a checkpoint path, a ``local-dir:`` folder, the Hugging Face hub cache
(``HF_HUB_CACHE``/``HF_HOME`` or ``cache_dir``) and open_clip's URL cache (``~/.cache/clip``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

# Hugging Face repositories of common open_clip tags (the rest are matched by name in the cache).
KNOWN_HF_REPOS: dict[tuple[str, str], str] = {
    ("ViT-B-32", "laion2b_s34b_b79k"): "laion/CLIP-ViT-B-32-laion2B-s34B-b79K",
    ("ViT-B-32", "openai"): "timm/vit_base_patch32_clip_224.openai",
    ("ViT-B-16", "laion2b_s34b_b88k"): "laion/CLIP-ViT-B-16-laion2B-s34B-b88K",
    ("ViT-B-16", "openai"): "timm/vit_base_patch16_clip_224.openai",
    ("ViT-L-14", "laion2b_s32b_b82k"): "laion/CLIP-ViT-L-14-laion2B-s32B-b82K",
    ("ViT-L-14", "openai"): "timm/vit_large_patch14_clip_224.openai",
}
WEIGHT_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
_CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt")


@dataclass(frozen=True)
class WeightsStatus:
    """Where the weights are (``path``), or why they are not available (``reason``)."""

    available: bool
    path: str | None
    reason: str
    # True when only open_clip itself can tell (a tag this module does not know, with nothing
    # matching in the caches): ``auto`` then treats the weights as absent.
    uncertain: bool = False


def hub_cache_dirs(cache_dir: str | Path | None = None) -> list[Path]:
    if cache_dir:
        return [Path(cache_dir)]
    dirs = []
    if os.environ.get("HF_HUB_CACHE"):
        dirs.append(Path(os.environ["HF_HUB_CACHE"]))
    home = Path(os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface")
    dirs.append(home / "hub")
    return dirs


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _repo_weights(repo_dir: Path) -> str | None:
    snapshots = repo_dir / "snapshots"
    if not snapshots.is_dir():
        return None
    for snap in sorted(snapshots.iterdir()):
        for name in WEIGHT_FILES:
            candidate = snap / name
            if candidate.is_file():
                return str(candidate)
    return None


def _find_in_hub_cache(model: str, tag: str, cache_dir: str | Path | None) -> str | None:
    repo = KNOWN_HF_REPOS.get((model, tag))
    wanted_model, wanted_tag = _norm(model.replace("ViT", "vit")), _norm(tag)
    for root in hub_cache_dirs(cache_dir):
        if not root.is_dir():
            continue
        if repo:
            found = _repo_weights(root / ("models--" + repo.replace("/", "--")))
            if found:
                return found
        for entry in root.glob("models--*"):
            name = _norm(entry.name)
            if wanted_model in name and wanted_tag and wanted_tag in name:
                found = _repo_weights(entry)
                if found:
                    return found
    return None


def find_clip_weights(
    model_name: str, pretrained: str, cache_dir: str | Path | None = None
) -> WeightsStatus:
    """Whether ``auto`` can use OpenCLIP ``model_name`` with ``pretrained`` here (files only)."""
    if model_name.startswith("local-dir:"):
        folder = Path(model_name.removeprefix("local-dir:"))
        if folder.is_dir():
            return WeightsStatus(True, str(folder), "local model folder")
        return WeightsStatus(False, None, f"folder {folder} does not exist")
    if model_name.startswith("hf-hub:"):
        repo = model_name.removeprefix("hf-hub:")
        for root in hub_cache_dirs(cache_dir):
            found = _repo_weights(root / ("models--" + repo.replace("/", "--")))
            if found:
                return WeightsStatus(True, found, "in the Hugging Face cache")
        return WeightsStatus(False, None, f"{repo} is not in the Hugging Face cache")
    if not pretrained:
        return WeightsStatus(False, None, "no weights configured (AVATAR_CLIP_PRETRAINED is empty)")
    looks_like_path = os.sep in pretrained or pretrained.endswith(_CHECKPOINT_SUFFIXES)
    if looks_like_path:
        if os.path.isfile(pretrained):
            return WeightsStatus(True, pretrained, "checkpoint file")
        return WeightsStatus(False, None, f"checkpoint file {pretrained} does not exist")
    found = _find_in_hub_cache(model_name, pretrained, cache_dir)
    if found:
        return WeightsStatus(True, found, "in the Hugging Face cache")
    clip_cache = Path(cache_dir or Path.home() / ".cache" / "clip")
    if pretrained == "openai" and (clip_cache / f"{model_name}.pt").is_file():
        return WeightsStatus(True, str(clip_cache / f"{model_name}.pt"), "in ~/.cache/clip")
    known = (model_name, pretrained) in KNOWN_HF_REPOS
    where = ", ".join(str(d) for d in hub_cache_dirs(cache_dir))
    return WeightsStatus(
        False,
        None,
        f"open_clip weights {model_name}/{pretrained} are not on this machine (looked in "
        f"{where}); `avatar-pipeline models pull` downloads them",
        uncertain=not known,
    )


def describe_live_scorer(
    embedder: str, model_name: str, pretrained: str, cache_dir: str | Path | None = None
) -> str:
    """One line saying which identity scorer runs with this configuration, and why (no torch)."""
    from avatar_pipeline.consistency.embedders.perceptual import PERCEPTUAL_MODEL

    if embedder == "perceptual":
        return f"perceptual ({PERCEPTUAL_MODEL}), as configured (AVATAR_EMBEDDER=perceptual)"
    status = find_clip_weights(model_name, pretrained, cache_dir)
    if status.available:
        return f"clip {model_name} ({pretrained}), weights at {status.path} [{embedder}]"
    if embedder == "clip":
        return (
            f"clip {model_name} ({pretrained}) is configured but its weights are missing: "
            f"{status.reason}; scoring will fail until they are there"
        )
    return f"perceptual ({PERCEPTUAL_MODEL}) [auto]: {status.reason}"
