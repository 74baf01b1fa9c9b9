"""Users, characters and episodes: the minimal tables the spec assumes around the avatar domain."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from avatar_pipeline.catalog._support import check_choice, check_text, guarded, require
from avatar_pipeline.catalog.models import USER_ROLES, Character, Episode, User


def create_user(session: Session, *, email: str, role: str = "user") -> User:
    email = check_text(email, field="email")
    check_choice(role, USER_ROLES, field="role", constraint="ck_users_role")
    user = User(email=email, role=role)
    conflicts = {"uq_users_email": lambda: f"a user with email {email!r} already exists"}
    with guarded(session, f"user {email!r}", conflicts):
        session.add(user)
    return user


def get_user(session: Session, user_id: uuid.UUID | str) -> User:
    return require(session, User, user_id, "user")


def create_character(
    session: Session, *, name: str, description: str | None = None, avatar_url: str | None = None
) -> Character:
    character = Character(
        name=check_text(name, field="name"), description=description, avatar_url=avatar_url
    )
    with guarded(session, f"character {name!r}"):
        session.add(character)
    return character


def get_character(session: Session, character_id: uuid.UUID | str) -> Character:
    return require(session, Character, character_id, "character")


def create_episode(
    session: Session, *, character_id: uuid.UUID, user_id: uuid.UUID, title: str
) -> Episode:
    character = get_character(session, character_id)
    user = get_user(session, user_id)
    episode = Episode(
        character_id=character.id, user_id=user.id, title=check_text(title, field="title")
    )
    with guarded(session, f"episode {title!r}"):
        session.add(episode)
    return episode
