"""The spec's data migration: each character's single ``avatar_url`` becomes an avatar kit.

For every character with an ``avatar_url``: create "<name> Default" with basic prompts derived
from the name and description, import the image as the kit's ``anchor_portrait`` asset
(``source_type='imported'``, re-encoded to PNG at the spec's storage path), make it canonical
and the primary anchor, and link the character (``active_avatar_kit_id``).

Each character runs in its own transaction. The image is read and decoded before anything is
written; if the database write fails after the image was stored, the stored object is deleted
again. Running twice changes nothing: a character whose active kit's primary anchor carries
``generation_metadata['legacy_avatar_url'] == avatar_url`` is skipped, and so is a character
that already has an active kit from elsewhere (that kit is the character's visual identity now).

``avatar_url`` may be a local file (absolute, ``file://``, or relative to ``base_dir``), an
object-store key whose first segment is the bucket (``avatars/legacy/yuki.png``), or an
``http(s)`` URL when a ``fetch_url`` function is given (nothing is fetched otherwise).
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from urllib.parse import unquote, urlsplit

from PIL import Image, ImageOps
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from avatar_pipeline.catalog.db import session_scope
from avatar_pipeline.catalog.errors import CatalogError
from avatar_pipeline.catalog.models import AvatarAsset, AvatarKit, Character
from avatar_pipeline.catalog.repository import (
    create_kit,
    promote_to_canonical,
    register_asset,
    set_active_kit,
)
from avatar_pipeline.domain.prompts import MAX_PROMPT_CHARS
from avatar_pipeline.domain.vocab import AssetType, SourceType
from avatar_pipeline.storage.base import ObjectNotFoundError, ObjectStore, StorageError
from avatar_pipeline.storage.keys import BUCKETS, InvalidKeyError, anchor_path, validate_path

log = logging.getLogger(__name__)

LEGACY_STYLE_PROMPT = (
    "consistent character illustration, clean line art, soft even lighting, plain background"
)
LEGACY_NEGATIVE_PROMPT = (
    "multiple people, different hairstyle, different eye color, different outfit, text, watermark"
)
MAX_LEGACY_IMAGE_BYTES = 50 * 1024 * 1024

FetchUrl = Callable[[str], bytes]


class LegacyAvatarError(CatalogError):
    """A legacy avatar could not be read or is not a usable image."""


@dataclass(frozen=True)
class LegacyAvatarIssue:
    """One character the migration could not (or chose not to) import, and why."""

    character_id: uuid.UUID
    character_name: str
    avatar_url: str
    reason: str

    def __str__(self) -> str:
        return (
            f"character {self.character_id} ({self.character_name!r}), "
            f"avatar_url {self.avatar_url!r}: {self.reason}"
        )


@dataclass
class MigrationReport:
    kits_created: int = 0
    assets_imported: int = 0
    characters_linked: int = 0
    skipped: int = 0
    errors: list[LegacyAvatarIssue] = field(default_factory=list)
    skipped_characters: list[LegacyAvatarIssue] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def __str__(self) -> str:
        lines = [
            f"legacy avatars: {self.kits_created} kits created, {self.assets_imported} portraits "
            f"imported, {self.characters_linked} characters linked, {self.skipped} skipped, "
            f"{len(self.errors)} errors"
        ]
        lines += [f"  skipped: {issue}" for issue in self.skipped_characters]
        lines += [f"  error: {issue}" for issue in self.errors]
        return "\n".join(lines)


@dataclass(frozen=True)
class DecodedAvatar:
    png: bytes
    width: int
    height: int
    original_format: str | None
    original_sha256: str


def _read_file(path: Path) -> bytes:
    if not path.is_file():
        raise LegacyAvatarError(f"file {path} does not exist")
    size = path.stat().st_size
    if size > MAX_LEGACY_IMAGE_BYTES:
        raise LegacyAvatarError(
            f"file {path} is {size} bytes; the limit is {MAX_LEGACY_IMAGE_BYTES}"
        )
    return path.read_bytes()


def read_legacy_avatar(
    avatar_url: str,
    store: ObjectStore,
    *,
    base_dir: Path | None = None,
    fetch_url: FetchUrl | None = None,
) -> tuple[bytes, str]:
    """The bytes behind a legacy ``avatar_url`` and a description of where they came from."""
    url = avatar_url.strip()
    parts = urlsplit(url)
    if parts.scheme == "file":
        path = Path(unquote(parts.path))
        return _read_file(path), f"file:{path}"
    if parts.scheme in ("http", "https"):
        if fetch_url is None:
            raise LegacyAvatarError(
                "remote URLs are not fetched by default; download the image and point "
                "avatar_url at the file, or pass fetch_url= to migrate_legacy_avatars"
            )
        return fetch_url(url), url
    if len(parts.scheme) > 1:
        raise LegacyAvatarError(f"unsupported URL scheme {parts.scheme!r}")
    if Path(url).is_absolute():
        return _read_file(Path(url)), f"file:{url}"

    tried: list[str] = []
    bucket, _, key = url.partition("/")
    if bucket in BUCKETS and key:
        try:
            return store.get(bucket, validate_path(key)), f"object:{bucket}/{key}"  # type: ignore[arg-type]
        except ObjectNotFoundError:
            tried.append(f"object {bucket}/{key} in {store.describe()}")
        except InvalidKeyError as exc:
            tried.append(f"object key rejected ({exc})")
    if base_dir is None:
        tried.append("a local file (no base_dir given for relative paths)")
    else:
        root = base_dir.resolve()
        candidate = (root / url).resolve()
        if not candidate.is_relative_to(root):
            raise LegacyAvatarError(f"relative path {url!r} escapes base_dir {root}")
        if candidate.is_file():
            return _read_file(candidate), f"file:{candidate}"
        tried.append(f"file {candidate}")
    raise LegacyAvatarError(f"avatar image not found; tried {'; '.join(tried)}")


def decode_avatar(raw: bytes) -> DecodedAvatar:
    """Check that the bytes are a complete image and re-encode them as PNG (RGB or RGBA)."""
    if not raw:
        raise LegacyAvatarError("the avatar file is empty")
    try:
        with Image.open(BytesIO(raw)) as probe:
            probe.verify()  # catches truncated and corrupt files before decoding
        with Image.open(BytesIO(raw)) as opened:
            original_format = opened.format
            opened.load()
            image = ImageOps.exif_transpose(opened)
            if image.mode not in ("RGB", "RGBA"):
                alpha = "A" in image.getbands() or "transparency" in image.info
                image = image.convert("RGBA" if alpha else "RGB")
            out = BytesIO()
            image.save(out, format="PNG")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise LegacyAvatarError(
            f"not a readable image ({type(exc).__name__}: {exc}); replace the file with a "
            "complete PNG/JPEG/WebP and run the migration again"
        ) from exc
    return DecodedAvatar(
        png=out.getvalue(),
        width=image.width,
        height=image.height,
        original_format=original_format,
        original_sha256=hashlib.sha256(raw).hexdigest(),
    )


def legacy_prompts(character: Character) -> tuple[str, str, str]:
    """Basic (appearance, style, negative) prompts from a character's name and description."""
    appearance = character.name.strip()
    if character.description and character.description.strip():
        appearance = f"{appearance}: {character.description.strip()}"
    return appearance[:MAX_PROMPT_CHARS], LEGACY_STYLE_PROMPT, LEGACY_NEGATIVE_PROMPT


def _migrated_from(session: Session, character: Character, avatar_url: str) -> bool:
    if character.active_avatar_kit_id is None:
        return False
    kit = session.get(AvatarKit, character.active_avatar_kit_id)
    if kit is None or kit.primary_anchor_id is None:
        return False
    anchor = session.get(AvatarAsset, kit.primary_anchor_id)
    return anchor is not None and anchor.generation_metadata.get("legacy_avatar_url") == avatar_url


def _has_default_kit(session: Session, character_id: uuid.UUID) -> bool:
    query = select(AvatarKit.id).where(
        AvatarKit.character_id == character_id, AvatarKit.is_default.is_(True)
    )
    return session.scalars(query).first() is not None


def _import_one(
    session: Session,
    character: Character,
    store: ObjectStore,
    written: list[str],
    base_dir: Path | None,
    fetch_url: FetchUrl | None,
) -> None:
    avatar_url = character.avatar_url or ""
    raw, source = read_legacy_avatar(avatar_url, store, base_dir=base_dir, fetch_url=fetch_url)
    decoded = decode_avatar(raw)
    appearance, style, negative = legacy_prompts(character)
    kit = create_kit(
        session,
        name=f"{character.name} Default",
        appearance_prompt=appearance,
        style_prompt=style,
        negative_prompt=negative,
        character_id=character.id,
        description=(
            f"Imported from the legacy avatar_url {avatar_url!r}. The prompts are placeholders "
            "derived from the character's name and description: review them before generating."
        ),
        is_default=not _has_default_kit(session, character.id),
    )
    asset_id = uuid.uuid4()
    path = anchor_path(str(kit.id), AssetType.ANCHOR_PORTRAIT, str(asset_id))
    store.put("avatars", path, decoded.png, content_type="image/png")
    written.append(path)
    register_asset(
        session,
        kit_id=kit.id,
        asset_id=asset_id,
        asset_type=AssetType.ANCHOR_PORTRAIT.value,
        storage_path=path,
        source_type=SourceType.IMPORTED.value,
        generation_metadata={
            "legacy_avatar_url": avatar_url,
            "imported_from": source,
            "original_format": decoded.original_format,
            "original_sha256": decoded.original_sha256,
            "sha256": hashlib.sha256(decoded.png).hexdigest(),
            "cost_usd": 0.0,
        },
        width=decoded.width,
        height=decoded.height,
        file_size_bytes=len(decoded.png),
    )
    promote_to_canonical(session, [asset_id])
    set_active_kit(session, character.id, kit.id)


def _migrate_character(
    session_factory: sessionmaker[Session],
    character_id: uuid.UUID,
    store: ObjectStore,
    report: MigrationReport,
    base_dir: Path | None,
    fetch_url: FetchUrl | None,
) -> None:
    written: list[str] = []
    name, url = "?", "?"
    try:
        with session_scope(session_factory) as session:
            character = session.get(Character, character_id, with_for_update=True)
            if character is None or not character.avatar_url:
                return  # deleted or cleared since the list was read
            name, url = character.name, character.avatar_url
            if _migrated_from(session, character, url):
                report.skipped += 1
                return
            if character.active_avatar_kit_id is not None:
                reason = f"already has active kit {character.active_avatar_kit_id}; left as is"
                report.skipped += 1
                report.skipped_characters.append(LegacyAvatarIssue(character_id, name, url, reason))
                return
            _import_one(session, character, store, written, base_dir, fetch_url)
    except (CatalogError, StorageError, SQLAlchemyError, OSError, ValueError) as exc:
        reason = str(exc) if isinstance(exc, CatalogError) else f"{type(exc).__name__}: {exc}"
        for path in written:
            try:
                store.delete("avatars", path)
            except StorageError as cleanup_exc:
                reason += (
                    f" (and the stored copy avatars/{path} could not be removed: {cleanup_exc})"
                )
        report.errors.append(LegacyAvatarIssue(character_id, name, url, reason))
        log.warning("legacy avatar not migrated: %s", report.errors[-1])
        return
    report.kits_created += 1
    report.assets_imported += 1
    report.characters_linked += 1


def migrate_legacy_avatars(
    session_factory: sessionmaker[Session],
    store: ObjectStore,
    *,
    base_dir: Path | None = None,
    fetch_url: FetchUrl | None = None,
) -> MigrationReport:
    """Turn every character's legacy ``avatar_url`` into a default kit with a portrait anchor.

    Problems with one character are reported in ``MigrationReport.errors`` and do not stop the
    others; run it again after fixing them (already migrated characters are skipped).
    """
    report = MigrationReport()
    with session_scope(session_factory) as session:
        character_ids = list(
            session.scalars(
                select(Character.id)
                .where(Character.avatar_url.is_not(None), Character.avatar_url != "")
                .order_by(Character.created_at, Character.id)
            )
        )
    for character_id in character_ids:
        _migrate_character(session_factory, character_id, store, report, base_dir, fetch_url)
    return report
