"""Bearer tokens: HS256 JWTs signed with ``settings.signing_secret``.

A token carries ``sub`` (the user id), ``exp`` and ``iat``; it also carries the user's ``role``
for the client's convenience, but the API always takes the role from the ``users`` table.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from sqlalchemy import select

from avatar_pipeline.catalog.db import make_engine, make_session_factory, session_scope
from avatar_pipeline.catalog.models import User
from avatar_pipeline.settings import Settings

ALGORITHM = "HS256"
DEFAULT_TOKEN_TTL = timedelta(hours=12)


class InvalidTokenError(ValueError):
    """A bearer token is malformed, expired, or signed with another secret."""


class UnknownUserError(LookupError):
    """``issue_token`` was asked for an email no user has."""


@dataclass(frozen=True)
class TokenClaims:
    user_id: uuid.UUID
    expires_at: datetime
    role: str | None = None


def _secret(settings: Settings) -> str:
    return settings.signing_secret.get_secret_value()


def create_access_token(
    settings: Settings,
    user_id: uuid.UUID | str,
    expires_in: timedelta = DEFAULT_TOKEN_TTL,
    *,
    role: str | None = None,
    now: datetime | None = None,
) -> str:
    """A signed token for ``user_id`` that expires ``expires_in`` from ``now``."""
    issued = now or datetime.now(UTC)
    claims: dict[str, object] = {
        "sub": str(uuid.UUID(str(user_id))),
        "iat": int(issued.timestamp()),
        "exp": int((issued + expires_in).timestamp()),
    }
    if role is not None:
        claims["role"] = role
    return jwt.encode(claims, _secret(settings), algorithm=ALGORITHM)


def decode_token(settings: Settings, token: str) -> TokenClaims:
    """Check signature and expiry; raise InvalidTokenError saying what is wrong."""
    try:
        claims = jwt.decode(
            token,
            _secret(settings),
            algorithms=[ALGORITHM],
            options={"require": ["sub", "exp"]},
        )
    except jwt.ExpiredSignatureError:
        raise InvalidTokenError("the bearer token has expired; request a new one") from None
    except jwt.InvalidTokenError as exc:
        raise InvalidTokenError(
            f"the bearer token is not valid ({exc}); send 'Authorization: Bearer <token>' with "
            "a token issued by this deployment"
        ) from None
    try:
        user_id = uuid.UUID(str(claims["sub"]))
    except ValueError:
        raise InvalidTokenError("the bearer token's subject is not a user id") from None
    role = claims.get("role")
    return TokenClaims(
        user_id=user_id,
        expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
        role=str(role) if role is not None else None,
    )


def issue_token(settings: Settings, email: str, expires_in: timedelta = DEFAULT_TOKEN_TTL) -> str:
    """A token for the existing user with ``email`` (for the CLI); the catalog must be migrated."""
    engine = make_engine(settings.catalog_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            user = session.scalar(select(User).where(User.email == email.strip()))
            if user is None:
                raise UnknownUserError(
                    f"no user has the email {email!r}; create the user first (e.g. "
                    "`avatar-pipeline demo` seeds an admin, or catalog.repository.create_user)"
                )
            return create_access_token(settings, user.id, expires_in, role=user.role)
    finally:
        engine.dispose()
