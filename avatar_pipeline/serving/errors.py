"""Domain and layer errors as HTTP answers, each with the layer's own actionable message.

404 not found; 409 a conflict with the current state (uniqueness, status transitions);
422 input the rules reject (bad references, constraint or prompt rules, unusable images);
413 an upload over the size limit; 502 the image provider or the object store failed;
503 the catalog database failed or is busy (no free connection within the pool timeout, a
lock that outlived the busy timeout), always with ``Retry-After`` (the driver's message is
logged, not returned). Every error body has the shape ``schemas.ErrorBody``.
"""

from __future__ import annotations

import contextlib
import logging

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from avatar_pipeline.catalog.errors import (
    CatalogError,
    ConflictError,
    ConstraintViolationError,
    InvalidReferenceError,
    InvalidTransitionError,
    NotFoundError,
)
from avatar_pipeline.domain.prompts import InvalidPromptError
from avatar_pipeline.imaging.types import (
    BudgetExceededError,
    ImageServiceError,
    InvalidImageRequestError,
)
from avatar_pipeline.serving.uploads import UploadRejectedError
from avatar_pipeline.storage.base import ObjectNotFoundError, StorageError
from avatar_pipeline.storage.keys import InvalidKeyError

logger = logging.getLogger(__name__)

# Most specific first: the first matching class decides the status.
STATUS_BY_ERROR: tuple[tuple[type[Exception], int], ...] = (
    (NotFoundError, status.HTTP_404_NOT_FOUND),
    (ConflictError, status.HTTP_409_CONFLICT),
    (InvalidTransitionError, status.HTTP_409_CONFLICT),
    (InvalidReferenceError, status.HTTP_422_UNPROCESSABLE_CONTENT),
    (ConstraintViolationError, status.HTTP_422_UNPROCESSABLE_CONTENT),
    (CatalogError, status.HTTP_422_UNPROCESSABLE_CONTENT),
    (InvalidPromptError, status.HTTP_422_UNPROCESSABLE_CONTENT),
    (InvalidKeyError, status.HTTP_422_UNPROCESSABLE_CONTENT),
    (InvalidImageRequestError, status.HTTP_422_UNPROCESSABLE_CONTENT),
    (BudgetExceededError, status.HTTP_409_CONFLICT),
    (ImageServiceError, status.HTTP_502_BAD_GATEWAY),
    (ObjectNotFoundError, status.HTTP_404_NOT_FOUND),
    (StorageError, status.HTTP_502_BAD_GATEWAY),
)


def status_for(exc: Exception) -> int:
    if isinstance(exc, UploadRejectedError):
        return exc.status_code
    for error_type, code in STATUS_BY_ERROR:
        if isinstance(exc, error_type):
            return code
    return status.HTTP_500_INTERNAL_SERVER_ERROR


DEFAULT_RETRY_AFTER_SECONDS = 2


def _retry_after(request: Request) -> str:
    seconds = DEFAULT_RETRY_AFTER_SECONDS
    lazy = getattr(request.app.state, "services", None)
    # the services themselves may have failed to build: keep the default then
    with contextlib.suppress(Exception):
        seconds = lazy.get().settings.api_retry_after_seconds if lazy is not None else seconds
    return str(seconds)


async def _database_failed(request: Request, exc: Exception) -> JSONResponse:
    logger.error("%s %s: catalog database error: %s", request.method, request.url.path, exc)
    return JSONResponse(
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        content={
            "detail": "the catalog database could not complete the request and nothing was "
            "changed; retry shortly, and check GET /healthz if it persists",
            "error": type(exc).__name__,
        },
        headers={"Retry-After": _retry_after(request)},
    )


async def _pool_exhausted(request: Request, exc: Exception) -> JSONResponse:
    logger.warning(
        "%s %s: no free catalog connection within the pool timeout (%s)",
        request.method,
        request.url.path,
        exc,
    )
    return JSONResponse(
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        content={
            "detail": "the API is at its concurrency limit (every catalog connection is in use) "
            "and nothing was changed; retry after the Retry-After seconds",
            "error": "CatalogBusy",
        },
        headers={"Retry-After": _retry_after(request)},
    )


async def _handle(request: Request, exc: Exception) -> JSONResponse:
    code = status_for(exc)
    if code >= 500:
        logger.warning(
            "%s %s failed: %s: %s", request.method, request.url.path, type(exc).__name__, exc
        )
    detail = str(exc)
    if isinstance(exc, ImageServiceError) and code == status.HTTP_502_BAD_GATEWAY:
        detail = f"the image provider failed: {exc}"
    return JSONResponse(status_code=code, content={"detail": detail, "error": type(exc).__name__})


def install_error_handlers(app: FastAPI) -> None:
    for error_type in (
        CatalogError,
        InvalidPromptError,
        InvalidKeyError,
        ImageServiceError,
        StorageError,
        UploadRejectedError,
    ):
        app.add_exception_handler(error_type, _handle)
    app.add_exception_handler(DBAPIError, _database_failed)
    app.add_exception_handler(PoolTimeoutError, _pool_exhausted)
