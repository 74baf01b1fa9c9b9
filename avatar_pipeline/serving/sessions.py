"""Browser sign-in for the studio: one-time sign-in links and server-side sessions.

- A sign-in link carries a random token (256 bits); the catalog stores only its SHA-256 with
  an expiry and ``used_at``. Redeeming it is one conditional UPDATE (unused and unexpired), so
  two browsers racing on the same link cannot both sign in, on SQLite or PostgreSQL.
- A session is a random token in an HttpOnly cookie; the catalog stores its SHA-256 with an
  expiry, so signing out (or expiry) ends it on the server and a database read yields no
  usable cookie.
- CSRF: every state-changing studio request carries a token that is the HMAC (with the
  deployment's signing secret) of the session token; a page from another origin can neither
  read the cookie nor compute the token. The API's bearer tokens are unaffected.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from avatar_pipeline.catalog.models import SigninLink, StudioSession, User
from avatar_pipeline.settings import Settings

SESSION_COOKIE = "avatar_studio"
SIGNIN_PATH = "/studio/signin/"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]", "testserver"})


class SigninLinkError(ValueError):
    """A sign-in link that is unknown, already used or expired (the message says which)."""


@dataclass(frozen=True)
class SignedIn:
    user: User
    session_id: uuid.UUID
    csrf_token: str


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _now(now: datetime | None) -> datetime:
    return (now or datetime.now(UTC)).astimezone(UTC)


def find_user(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == email.strip()))


def create_signin_link(
    session: Session,
    settings: Settings,
    user: User,
    *,
    now: datetime | None = None,
    ttl: timedelta | None = None,
) -> str:
    """A one-time sign-in URL (``public_base_url`` + path) for ``user``; the caller commits."""
    token = secrets.token_urlsafe(32)
    issued = _now(now)
    session.add(
        SigninLink(
            user_id=user.id,
            token_hash=hash_token(token),
            created_at=issued,
            expires_at=issued + (ttl or timedelta(seconds=settings.signin_link_ttl_seconds)),
        )
    )
    session.flush()
    return settings.public_base_url.rstrip("/") + SIGNIN_PATH + token


def check_signin_link(session: Session, token: str, *, now: datetime | None = None) -> User:
    """The link's user if it could be redeemed now (nothing is consumed)."""
    link = session.scalar(select(SigninLink).where(SigninLink.token_hash == hash_token(token)))
    _explain(link, _now(now))
    assert link is not None
    user = session.get(User, link.user_id)
    if user is None:
        raise SigninLinkError("this sign-in link's user no longer exists")
    return user


def _explain(link: SigninLink | None, now: datetime) -> None:
    if link is None:
        raise SigninLinkError(
            "this sign-in link is not known here; ask an admin for a new one "
            "(`avatar-pipeline signin-link EMAIL`)"
        )
    if link.used_at is not None:
        raise SigninLinkError(
            "this sign-in link was already used; each link signs in once — ask for a new one "
            "(`avatar-pipeline signin-link EMAIL`)"
        )
    if link.expires_at <= now:
        raise SigninLinkError(
            "this sign-in link has expired; ask for a new one (`avatar-pipeline signin-link EMAIL`)"
        )


def redeem_signin_link(
    session: Session, settings: Settings, token: str, *, now: datetime | None = None
) -> tuple[User, str]:
    """Consume the link and open a session: (user, session token for the cookie).

    The consume is one conditional UPDATE, so of two concurrent redemptions only one wins;
    the loser gets SigninLinkError. The caller commits.
    """
    moment = _now(now)
    token_hash = hash_token(token)
    consumed = session.execute(
        update(SigninLink)
        .where(
            SigninLink.token_hash == token_hash,
            SigninLink.used_at.is_(None),
            SigninLink.expires_at > moment,
        )
        .values(used_at=moment)
        .returning(SigninLink.user_id)
    ).first()
    if consumed is None:
        link = session.scalar(select(SigninLink).where(SigninLink.token_hash == token_hash))
        _explain(link, moment)
        raise SigninLinkError("this sign-in link could not be used; ask for a new one")
    user = session.get(User, consumed.user_id)
    if user is None:  # pragma: no cover - the FK cascades links with their user
        raise SigninLinkError("this sign-in link's user no longer exists")
    session_token = secrets.token_urlsafe(32)
    session.add(
        StudioSession(
            user_id=user.id,
            token_hash=hash_token(session_token),
            created_at=moment,
            expires_at=moment + timedelta(seconds=settings.studio_session_ttl_seconds),
        )
    )
    session.flush()
    return user, session_token


def csrf_token_for(settings: Settings, session_token: str) -> str:
    secret = settings.signing_secret.get_secret_value().encode()
    return hmac.new(secret, b"studio-csrf:" + session_token.encode(), hashlib.sha256).hexdigest()


def csrf_matches(settings: Settings, session_token: str, presented: str | None) -> bool:
    if not presented:
        return False
    return hmac.compare_digest(csrf_token_for(settings, session_token), presented)


def signed_in(
    session: Session, settings: Settings, session_token: str | None, *, now: datetime | None = None
) -> SignedIn | None:
    """The user of a live session cookie, or None (unknown, ended or expired)."""
    if not session_token:
        return None
    row = session.scalar(
        select(StudioSession).where(StudioSession.token_hash == hash_token(session_token))
    )
    if row is None or row.ended_at is not None or row.expires_at <= _now(now):
        return None
    user = session.get(User, row.user_id)
    if user is None:
        return None
    return SignedIn(user, row.id, csrf_token_for(settings, session_token))


def end_session(session: Session, session_token: str, *, now: datetime | None = None) -> None:
    session.execute(
        update(StudioSession)
        .where(
            StudioSession.token_hash == hash_token(session_token),
            StudioSession.ended_at.is_(None),
        )
        .values(ended_at=_now(now))
    )


def cookie_is_secure(hostname: str | None) -> bool:
    """Secure cookies everywhere but loopback (plain http://127.0.0.1 must still work)."""
    return (hostname or "").lower() not in LOOPBACK_HOSTS
