"""Bearer tokens: HS256 JWTs signed with ``settings.signing_secret``.

A token carries ``sub`` (the user id), ``exp`` and ``iat``; it also carries the user's ``role``
for the client's convenience, but the API always takes the role from the ``users`` table.

The development signing secret ships in the repository, so anyone can forge a token with it.
Such tokens are accepted only where that does no harm (``dev_secret_problem``): in the ``local``
and ``test`` environments, on a connection that arrived on a loopback address. In ``development``
(a shared dev deployment) every token is refused until ``AVATAR_SIGNING_SECRET`` is set, and in
``production`` the settings refuse to load at all.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from sqlalchemy import select

from avatar_pipeline.catalog.db import make_engine, make_session_factory, session_scope
from avatar_pipeline.catalog.models import User
from avatar_pipeline.settings import DEV_SIGNING_SECRET, Settings

ALGORITHM = "HS256"
DEFAULT_TOKEN_TTL = timedelta(hours=12)
DEV_SECRET_ENVIRONMENTS = frozenset({"local", "test"})
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost", "testserver"})
"""``testserver`` is the host Starlette's in-process TestClient reports (no network at all)."""


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


def uses_dev_secret(settings: Settings) -> bool:
    return settings.signing_secret.get_secret_value() == DEV_SIGNING_SECRET


def is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    return host in LOOPBACK_HOSTS or host.startswith("127.") or host == "::ffff:127.0.0.1"


def dev_secret_problem(settings: Settings, server_host: str | None) -> str | None:
    """Why a token must be refused because the development secret is in use (None: it may be
    checked). ``server_host`` is the local address the request arrived on (ASGI ``server``)."""
    if not uses_dev_secret(settings):
        return None
    fix = (
        "set AVATAR_SIGNING_SECRET to a real secret (e.g. `python -c 'import secrets; "
        "print(secrets.token_urlsafe(48))'`) and issue new tokens"
    )
    if settings.environment not in DEV_SECRET_ENVIRONMENTS:
        return (
            f"this deployment (AVATAR_ENVIRONMENT={settings.environment}) still uses the "
            f"development signing secret, which anyone can forge tokens with; {fix}"
        )
    if not is_loopback(server_host):
        return (
            "the development signing secret is only trusted on a loopback address, and this "
            f"request arrived on {server_host or 'an unknown address'}; {fix}"
        )
    return None


def is_loopback_bind(host: str) -> bool:
    """True when ``host`` (a ``serve --host`` value) only listens on the loopback interface."""
    import ipaddress

    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def serve_bind_check(settings: Settings, host: str) -> tuple[str | None, str | None]:
    """(refusal, warning) for ``avatar-pipeline serve --host host``: with the development
    signing secret a non-loopback bind is refused; a loopback one gets a loud warning."""
    if not uses_dev_secret(settings):
        return None, None
    banner = "!" * 78
    if not is_loopback_bind(host):
        return (
            f"{banner}\nREFUSING to serve on {host}: AVATAR_SIGNING_SECRET is the development "
            "default that ships in the repository, so anyone could forge bearer tokens and "
            "signed URLs.\nSet AVATAR_SIGNING_SECRET (e.g. `python -c 'import secrets; "
            "print(secrets.token_urlsafe(48))'`) or bind to 127.0.0.1.\n" + banner
        ), None
    return None, (
        f"{banner}\nWARNING: serving with the DEVELOPMENT signing secret (AVATAR_SIGNING_SECRET "
        "is unset). Anyone with the repository can forge tokens; they are accepted only on "
        f"loopback and only with AVATAR_ENVIRONMENT=local or test.\n{banner}"
    )


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
