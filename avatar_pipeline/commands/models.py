"""``avatar-pipeline models pull``: fetch the configured OpenCLIP weights, verify, say what runs.

Downloads ``AVATAR_CLIP_MODEL`` / ``AVATAR_CLIP_PRETRAINED`` through open_clip's registry and
huggingface_hub (into the Hugging Face cache, where ``auto`` looks for them), checks the file's
SHA-256 when one is given (``--sha256``) and that the model loads and embeds an image, then
prints the scorer ``auto`` will use from then on.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from avatar_pipeline.settings import Settings

# (repo_id, filenames to try in order, cache_dir) -> local path
Downloader = Callable[[str, tuple[str, ...], str | None], str]


def register(
    sub: argparse._SubParsersAction,
) -> dict[str, Callable[[Settings, argparse.Namespace], int]]:
    parser = sub.add_parser("models", help="download and verify the OpenCLIP weights")
    actions = parser.add_subparsers(dest="models_action", required=True)
    pull = actions.add_parser("pull", help="download the configured open_clip weights")
    pull.add_argument("--model", help="open_clip model (default AVATAR_CLIP_MODEL)")
    pull.add_argument("--pretrained", help="open_clip tag (default AVATAR_CLIP_PRETRAINED)")
    pull.add_argument("--sha256", help="expected SHA-256 of the weights file")
    pull.add_argument("--cache-dir", help="download here instead of the Hugging Face cache")
    return {"models": cmd_models}


def cmd_models(settings: Settings, args: argparse.Namespace) -> int:
    return cmd_pull(settings, args)


def hub_download(repo_id: str, filenames: tuple[str, ...], cache_dir: str | None) -> str:
    """Download the first of ``filenames`` that the repository has (huggingface_hub)."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    last: Exception | None = None
    for name in filenames:
        try:
            return hf_hub_download(repo_id, name, cache_dir=cache_dir)
        except EntryNotFoundError as exc:
            last = exc
    raise FileNotFoundError(f"{repo_id} has none of {', '.join(filenames)}: {last}")


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _source(model: str, pretrained: str) -> tuple[str, tuple[str, ...]]:
    import open_clip

    cfg = open_clip.get_pretrained_cfg(model, pretrained)
    if not cfg:
        known = ", ".join(open_clip.list_pretrained_tags_by_model(model)[:8]) or "none"
        raise ValueError(
            f"open_clip has no weights {pretrained!r} for {model} (tags for {model}: {known})"
        )
    hf_hub = cfg.get("hf_hub") or ""
    if not hf_hub:
        raise ValueError(
            f"open_clip weights {model}/{pretrained} are only published at {cfg.get('url')}; "
            "download that file and set AVATAR_CLIP_PRETRAINED to its path"
        )
    parts = hf_hub.split("/")  # "org/repo/" or "org/repo/file.bin"
    repo_id, filename = "/".join(parts[:2]), "/".join(parts[2:])
    if filename:
        stem = filename.rsplit(".", 1)[0]
        return repo_id, (stem + ".safetensors", filename)
    return repo_id, ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")


def cmd_pull(
    settings: Settings,
    args: argparse.Namespace,
    *,
    download: Downloader = hub_download,
    out: Any = None,
) -> int:
    from avatar_pipeline.consistency.embedders import load_embedder
    from avatar_pipeline.consistency.embedders.openclip import EmbedderUnavailableError
    from avatar_pipeline.consistency.embedders.weights import describe_live_scorer

    out = out or sys.stdout
    model = args.model or settings.clip_model
    pretrained = args.pretrained or settings.clip_pretrained
    cache_dir = getattr(args, "cache_dir", None)
    if Path(pretrained).is_file():
        path = pretrained
        print(
            f"AVATAR_CLIP_PRETRAINED is a local checkpoint ({path}); nothing to download", file=out
        )
    else:
        try:
            repo_id, filenames = _source(model, pretrained)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(f"downloading open_clip {model}/{pretrained} from {repo_id} ...", file=out)
        try:
            path = download(repo_id, filenames, cache_dir)
        except Exception as exc:  # network, auth, disk: one line a person can act on
            print(
                f"error: download of {repo_id} failed: {type(exc).__name__}: {exc}; check the "
                "network (or HF_ENDPOINT / HF_TOKEN), or download the file elsewhere and set "
                "AVATAR_CLIP_PRETRAINED to its path",
                file=sys.stderr,
            )
            return 1
    digest = sha256_of(path)
    print(f"weights: {path} ({Path(path).stat().st_size / 1e6:.1f} MB, sha256 {digest})", file=out)
    if args.sha256 and args.sha256.lower() != digest:
        print(f"error: checksum mismatch: expected {args.sha256}, got {digest}", file=sys.stderr)
        return 1
    try:
        embedder = load_embedder(
            "clip", model_name=model, pretrained=pretrained, cache_dir=cache_dir
        )
    except EmbedderUnavailableError as exc:
        print(f"error: the weights do not load: {exc}", file=sys.stderr)
        return 1
    vector = embedder.embed_images([_probe_png()])
    print(f"verified: {model} loads and embeds an image ({vector.shape[1]} dims)", file=out)
    print(
        "from now on: " + describe_live_scorer(settings.embedder, model, pretrained, cache_dir),
        file=out,
    )
    if (model, pretrained) != (settings.clip_model, settings.clip_pretrained):
        print(
            f"(set AVATAR_CLIP_MODEL={model} AVATAR_CLIP_PRETRAINED={pretrained} to use them)",
            file=out,
        )
    return 0


def _probe_png() -> bytes:
    import io

    from PIL import Image, ImageDraw

    image = Image.new("RGB", (64, 64), (200, 220, 240))
    ImageDraw.Draw(image).ellipse((16, 8, 48, 56), fill=(80, 60, 120))
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()
