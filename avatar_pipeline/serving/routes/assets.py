"""A kit's assets (admin only): validated uploads, signed-URL listing, metadata, soft delete."""

from __future__ import annotations

import hashlib
import uuid
from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, UploadFile, status

from avatar_pipeline.catalog import repository as repo
from avatar_pipeline.catalog.errors import InvalidTransitionError, NotFoundError
from avatar_pipeline.catalog.models import AvatarAsset, AvatarKit
from avatar_pipeline.domain.vocab import AssetType, SourceType
from avatar_pipeline.serving.deps import AdminUser, ObjectStoreDep, SessionDep, UploadLimitsDep
from avatar_pipeline.serving.schemas import AssetPublic, AssetTypeName, AssetUpdate, AssetUploaded
from avatar_pipeline.serving.uploads import normalize_image, read_limited
from avatar_pipeline.storage import keys
from avatar_pipeline.storage.base import ObjectStore

router = APIRouter(prefix="/avatar-kits/{kit_id}/assets", tags=["avatar-assets"])

ANCHOR_ROLES = {
    AssetType.ANCHOR_PORTRAIT.value: ("primary", "primary_anchor_id"),
    AssetType.ANCHOR_FULLBODY.value: ("secondary", "secondary_anchor_id"),
}


def asset_public(asset: AvatarAsset, store: ObjectStore) -> AssetPublic:
    """The asset's columns plus a signed URL (presigned on S3)."""
    columns = {name: getattr(asset, name) for name in AssetPublic.model_fields if name != "url"}
    url = store.signed_url(asset.storage_bucket, asset.storage_path)  # type: ignore[arg-type]
    return AssetPublic.model_validate({**columns, "url": url})


def _kit_asset(session: SessionDep, kit_id: uuid.UUID, asset_id: uuid.UUID) -> AvatarAsset:
    kit = repo.get_kit(session, kit_id)
    asset = repo.get_asset(session, asset_id)
    if asset.avatar_kit_id != kit.id:
        raise NotFoundError("avatar asset", asset_id, f"in kit {kit.id}")
    return asset


def _tags(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    tags = [t.strip().lower() for value in values for t in value.split(",") if t.strip()]
    return tags or None


def _check_slot_fields(asset_type: str, expression: str | None, pose: str | None) -> str | None:
    """The slot label the storage path needs; 422 when the fields do not fit the type."""
    wants = {AssetType.EXPRESSION.value: "expression", AssetType.POSE.value: "pose"}.get(asset_type)
    given = {"expression": expression, "pose": pose}
    for field, value in given.items():
        if value is not None and field != wants:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                f"{field} is only for {field} assets, not for {asset_type}; leave it out",
            )
    if wants is not None and not given[wants]:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"{asset_type} assets need the form field {wants!r} (e.g. 'happy' or 'sitting')",
        )
    return given[wants] if wants else ("outfit" if asset_type == AssetType.OUTFIT else None)


def _becomes_canonical(session: SessionDep, kit: AvatarKit, asset_type: str, slot: str) -> bool:
    if asset_type in ANCHOR_ROLES:
        return getattr(kit, ANCHOR_ROLES[asset_type][1]) is None
    return slot not in repo.canonical_assets(session, kit.id)


@router.post(
    "",
    response_model=AssetUploaded,
    status_code=status.HTTP_201_CREATED,
    responses={
        413: {"description": "The file is larger than the upload limit."},
        422: {"description": "Not a still PNG/JPEG/WebP, truncated, or too many pixels."},
    },
)
def upload_asset(
    session: SessionDep,
    admin: AdminUser,
    store: ObjectStoreDep,
    limits: UploadLimitsDep,
    kit_id: uuid.UUID,
    file: Annotated[UploadFile, File(description="PNG, JPEG or WebP; stored as PNG.")],
    asset_type: Annotated[AssetTypeName, Form()],
    expression: Annotated[str | None, Form()] = None,
    pose: Annotated[str | None, Form()] = None,
    emotion_tags: Annotated[list[str] | None, Form(description="Repeat or comma-separate.")] = None,
) -> AssetUploaded:
    """Upload an image to the kit. The first anchor of each kind becomes the kit's anchor."""
    kit = repo.get_kit(session, kit_id)
    if kit.status == "archived":
        raise InvalidTransitionError(
            f"kit {kit.id} ({kit.name!r}) is archived; set its status back to 'draft' before "
            "uploading to it"
        )
    expression, pose = expression or None, pose or None  # HTML forms send "" for empty fields
    label = _check_slot_fields(asset_type, expression, pose)
    data = read_limited(file.file, limits.max_bytes, file.filename)
    image = normalize_image(data, limits, file.filename)

    asset_id = uuid.uuid4()
    path = keys.avatar_asset_path(str(kit.id), asset_type, str(asset_id), label)
    slot = {"expression": f"expression:{expression}", "pose": f"pose:{pose}"}.get(
        asset_type, asset_type
    )
    canonical = _becomes_canonical(session, kit, asset_type, slot)
    store.put("avatars", path, image.png, "image/png")
    try:
        asset = repo.register_asset(
            session,
            kit_id=kit.id,
            asset_id=asset_id,
            asset_type=asset_type,
            storage_path=path,
            source_type=SourceType.MANUAL_UPLOAD.value,
            expression=expression,
            pose=pose,
            emotion_tags=_tags(emotion_tags),
            generation_metadata={
                "uploaded_by": str(admin.id),
                "original_filename": file.filename,
                "original_format": image.source_format,
                "original_bytes": image.source_bytes,
                "sha256": hashlib.sha256(image.png).hexdigest(),
            },
            width=image.width,
            height=image.height,
            file_size_bytes=len(image.png),
            is_canonical=canonical,
        )
        session.commit()
    except BaseException:
        store.delete("avatars", path)
        raise
    role = ANCHOR_ROLES[asset_type][0] if canonical and asset_type in ANCHOR_ROLES else None
    if role:
        message = f"uploaded; the kit had no {role} anchor, so this is now its {role} anchor"
    elif canonical:
        message = f"uploaded; it is now the canonical {slot} of the kit"
    else:
        message = (
            f"uploaded as a candidate; the kit already has a canonical {slot} — PATCH "
            "is_canonical=true on this asset (or the kit's anchor) to use it instead"
        )
    return AssetUploaded(
        asset=asset_public(asset, store),
        became_canonical=canonical,
        became_anchor=role,  # type: ignore[arg-type]
        message=message,
    )


@router.get("", response_model=list[AssetPublic])
def list_assets(
    session: SessionDep,
    _admin: AdminUser,
    store: ObjectStoreDep,
    kit_id: uuid.UUID,
    asset_type: AssetTypeName | None = None,
    include_inactive: bool = False,
) -> list[AssetPublic]:
    """The kit's assets, oldest first, each with a signed URL."""
    assets = repo.list_assets(
        session, kit_id, asset_type=asset_type, include_inactive=include_inactive
    )
    return [asset_public(a, store) for a in assets]


@router.patch("/{asset_id}", response_model=AssetPublic)
def update_asset(
    session: SessionDep,
    _admin: AdminUser,
    store: ObjectStoreDep,
    kit_id: uuid.UUID,
    asset_id: uuid.UUID,
    body: AssetUpdate,
) -> AssetPublic:
    """Change expression/pose/emotion tags or is_active; ``is_canonical: true`` promotes it."""
    asset = _kit_asset(session, kit_id, asset_id)
    fields = body.model_dump(exclude_unset=True)
    promote = fields.pop("is_canonical", None)
    if "expression" in fields or "pose" in fields:
        # the upload's slot rules: an expression only on expression assets, a pose only on
        # pose assets, and each of those keeps its name
        _check_slot_fields(
            asset.asset_type,
            fields.get("expression", asset.expression),
            fields.get("pose", asset.pose),
        )
    if "emotion_tags" in fields:
        fields["emotion_tags"] = _tags(fields["emotion_tags"])
    if fields.get("is_active") is None:
        fields.pop("is_active", None)
    if fields:
        asset = repo.update_asset(session, asset.id, **fields)
    if promote:
        repo.promote_to_canonical(session, [asset.id])
    return asset_public(asset, store)


@router.delete("/{asset_id}", response_model=AssetPublic)
def delete_asset(
    session: SessionDep,
    _admin: AdminUser,
    store: ObjectStoreDep,
    kit_id: uuid.UUID,
    asset_id: uuid.UUID,
) -> AssetPublic:
    """Soft delete: inactive, not canonical, no longer an anchor; the image stays stored."""
    asset = _kit_asset(session, kit_id, asset_id)
    return asset_public(repo.deactivate_asset(session, asset.id), store)
