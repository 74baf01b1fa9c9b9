"""Dependencies, as ``Annotated`` aliases so handlers read as plain signatures."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated

import anyio
import anyio.to_thread
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from avatar_pipeline.catalog.db import new_session, session_scope
from avatar_pipeline.catalog.models import User
from avatar_pipeline.imaging.service import ImageService
from avatar_pipeline.serving.config import LazyServices, Services
from avatar_pipeline.serving.security import (
    InvalidTokenError,
    TokenClaims,
    decode_token,
    dev_secret_problem,
)
from avatar_pipeline.serving.uploads import UploadLimits
from avatar_pipeline.settings import Settings
from avatar_pipeline.storage.base import ObjectStore

bearer_scheme = HTTPBearer(auto_error=False, description="A token from `avatar-pipeline token`.")


def get_services(request: Request) -> Services:
    lazy: LazyServices = request.app.state.services
    return lazy.get()


ServicesDep = Annotated[Services, Depends(get_services)]


def get_settings_dep(services: ServicesDep) -> Settings:
    return services.settings


def get_object_store(services: ServicesDep) -> ObjectStore:
    return services.object_store


def get_image_service(services: ServicesDep) -> ImageService:
    return services.image_service


def get_upload_limits(services: ServicesDep) -> UploadLimits:
    return services.upload_limits


def get_clock() -> Callable[[], float]:
    """Unix time now; tests override it to check expiry without sleeping."""
    return time.time


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _db_limits(request: Request) -> tuple[anyio.Semaphore, anyio.CapacityLimiter]:
    """(gate on open request sessions, threads for their commit/close), one pair per app."""
    state = request.app.state
    if getattr(state, "db_gate", None) is None:
        threads = get_services(request).settings.api_max_threads
        state.db_teardown_limiter = anyio.CapacityLimiter(threads)
        state.db_gate = anyio.Semaphore(threads)
    return state.db_gate, state.db_teardown_limiter


async def get_db(request: Request, services: ServicesDep) -> AsyncIterator[Session]:
    """One transaction per request: committed when the handler returns, rolled back when it
    raises (so a rejected request changes nothing). A request that may write (any method but
    GET/HEAD/OPTIONS) gets a write transaction: on SQLite it takes the write lock before its
    first read and waits for it (``session_scope(write=True)``), instead of failing with
    "database is locked" when it reads and then writes under load.

    Sizing: FastAPI validates a blocking handler's response on a worker thread *before* this
    dependency exits, so a session holding a connection may wait for a worker thread. At most
    ``api_max_threads`` sessions are open at once (an async gate: a queued request holds
    neither a thread nor a connection), and the pool has room for them plus every worker
    thread (``config.api_pool_size``), so a worker never waits for a connection and the two
    cannot deadlock (before: 200 concurrent GETs timed out on the pool and answered 500).
    Commit and close run on threads of their own, never behind handlers."""
    gate, teardown = _db_limits(request)
    async with gate:
        session = new_session(services.session_factory, write=request.method not in SAFE_METHODS)
        try:
            yield session
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(session.commit, limiter=teardown)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(session.rollback, limiter=teardown)
            raise
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(session.close, limiter=teardown)


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
ObjectStoreDep = Annotated[ObjectStore, Depends(get_object_store)]
ImageServiceDep = Annotated[ImageService, Depends(get_image_service)]
UploadLimitsDep = Annotated[UploadLimits, Depends(get_upload_limits)]
ClockDep = Annotated[Callable[[], float], Depends(get_clock)]
# scope="function": commit (or roll back) before the response is sent, so a failed commit is
# an error response and never a success the database does not hold.
SessionDep = Annotated[Session, Depends(get_db, scope="function")]
CredentialsDep = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail=detail,
        headers={"WWW-Authenticate": "Bearer"},
    )


def _server_host(scope: dict[str, object]) -> str | None:
    server = scope.get("server")
    return str(server[0]) if isinstance(server, tuple | list) and server else None


def authenticate_bearer(
    settings: Settings, authorization: str | None, scope: dict[str, object]
) -> TokenClaims:
    """Check the ``Authorization`` header's bearer token (signature, expiry, and the
    development-secret rule of ``security.dev_secret_problem``); no database access, so the
    request guard can run it before the body is read. Raises a 401 HTTPException."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("not authenticated: send 'Authorization: Bearer <token>'")
    problem = dev_secret_problem(settings, _server_host(scope))
    if problem is not None:
        raise _unauthorized(problem)
    try:
        return decode_token(settings, token.strip())
    except InvalidTokenError as exc:
        raise _unauthorized(str(exc)) from None


def get_current_user(request: Request, services: ServicesDep, credentials: CredentialsDep) -> User:
    """The caller, looked up in ``users`` (its role there is authoritative), in a short
    transaction of its own so no database transaction stays open during image generation."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise _unauthorized("not authenticated: send 'Authorization: Bearer <token>'")
    claims = authenticate_bearer(
        services.settings, f"Bearer {credentials.credentials}", request.scope
    )
    with session_scope(services.session_factory, write=False) as session:
        user = session.get(User, claims.user_id)
    if user is None:
        raise _unauthorized(
            f"the bearer token's user {claims.user_id} no longer exists; request a new token"
        )
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


def get_current_admin(user: CurrentUser) -> User:
    if user.role != "admin":
        raise HTTPException(
            status_code=status.HTTP_403_FORBIDDEN,
            detail=f"user {user.email} has role {user.role!r}; avatar kit administration needs "
            "the 'admin' role",
        )
    return user


AdminUser = Annotated[User, Depends(get_current_admin)]
