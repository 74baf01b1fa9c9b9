"""Reads of local-store objects through signed URLs (S3 deployments use presigned URLs).

``avatars`` objects are public-read, so they are also served unsigned; ``scenes`` objects never
without a valid signature. A signature that is present must be valid, whatever the bucket.
An ``avatars`` object is served only while an active asset row points at it: a soft-deleted
asset (``is_active = false``) answers 404, signed or not.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response, status
from sqlalchemy import select

from avatar_pipeline.catalog.models import AvatarAsset
from avatar_pipeline.serving.deps import ClockDep, ObjectStoreDep, SessionDep, SettingsDep
from avatar_pipeline.storage.base import InvalidSignatureError, ObjectNotFoundError
from avatar_pipeline.storage.keys import PUBLIC_BUCKETS, InvalidKeyError, validate_bucket
from avatar_pipeline.storage.local import LocalObjectStore
from avatar_pipeline.storage.signing import verify_signed_request

router = APIRouter(prefix="/files", tags=["files"])


@router.get(
    "/{bucket}/{path:path}",
    response_class=Response,
    response_model=None,
    responses={
        200: {"content": {"image/png": {}}, "description": "The object's bytes."},
        403: {"description": "Expired, tampered or missing signature."},
        404: {"description": "No such object."},
    },
)
def read_file(
    bucket: str,
    path: str,
    settings: SettingsDep,
    store: ObjectStoreDep,
    session: SessionDep,
    clock: ClockDep,
    expires: Annotated[str | None, Query()] = None,
    signature: Annotated[str | None, Query()] = None,
) -> Response:
    if not isinstance(store, LocalObjectStore):
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"this deployment stores objects in {store.describe()}; use the presigned URL the "
            "API returned instead of /files",
        )
    try:
        validate_bucket(bucket)
    except InvalidKeyError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    signed = expires is not None or signature is not None
    if signed or bucket not in PUBLIC_BUCKETS:
        if not signed:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"{bucket} objects are private: use the signed URL the API returned "
                "(with ?expires=...&signature=...)",
            )
        try:
            verify_signed_request(
                settings.signing_secret.get_secret_value(),
                bucket,
                path,
                expires or "",
                signature or "",
                now=clock(),
            )
        except InvalidSignatureError as exc:
            raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from None
        except InvalidKeyError as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    if bucket == "avatars":
        active = session.scalar(
            select(AvatarAsset.is_active).where(
                AvatarAsset.storage_bucket == bucket, AvatarAsset.storage_path == path
            )
        )
        if not active:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND,
                f"no active avatar asset at {bucket}/{path} (deleted or never registered)",
            )
    try:
        head = store.head(bucket, path)  # type: ignore[arg-type]
        data = store.get(bucket, path)  # type: ignore[arg-type]
    except InvalidKeyError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except ObjectNotFoundError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no object at {bucket}/{path}") from None
    cache = "public, max-age=300" if not signed else "private, max-age=60"
    return Response(
        content=data,
        media_type=head.content_type,
        headers={"Cache-Control": cache, "X-Content-Type-Options": "nosniff"},
    )
