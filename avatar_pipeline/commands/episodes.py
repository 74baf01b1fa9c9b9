"""``avatar-pipeline episodes create|say|scene``: local episodes, their conversation, and a
scene drawn from it (for local use and tests; the host app owns episodes in production)."""

from __future__ import annotations

import argparse
import asyncio
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from avatar_pipeline.settings import Settings


@contextmanager
def _catalog(settings: Settings) -> Iterator[sessionmaker[Session]]:
    from avatar_pipeline.catalog.db import make_engine, make_session_factory
    from avatar_pipeline.catalog.migrate import upgrade_database

    upgrade_database(settings.catalog_url)
    engine = make_engine(settings.catalog_url)
    try:
        yield make_session_factory(engine)
    finally:
        engine.dispose()


def find_user_by_email(session: Session, email: str) -> uuid.UUID:
    from avatar_pipeline.catalog.models import User

    user = session.scalar(select(User).where(User.email == email.strip()))
    if user is None:
        raise LookupError(
            f"no user has the email {email!r}; create one first: avatar-pipeline users create "
            f"{email}"
        )
    return user.id


def find_character(session: Session, name_or_id: str) -> uuid.UUID:
    from avatar_pipeline.catalog.models import Character

    try:
        character = session.get(Character, uuid.UUID(name_or_id))
        if character is not None:
            return character.id
    except ValueError:
        pass
    found = list(session.scalars(select(Character).where(Character.name == name_or_id.strip())))
    if not found:
        names = sorted(session.scalars(select(Character.name)))
        raise LookupError(
            f"no character is named {name_or_id!r}; known: {', '.join(names) or 'none'}"
        )
    if len(found) > 1:
        ids = ", ".join(str(c.id) for c in found)
        raise LookupError(f"{len(found)} characters are named {name_or_id!r}; pass an id: {ids}")
    return found[0].id


def create_episode(
    settings: Settings, *, email: str, character: str, title: str | None
) -> uuid.UUID:
    from avatar_pipeline.catalog import repository as repo
    from avatar_pipeline.catalog.db import session_scope

    with _catalog(settings) as factory, session_scope(factory, write=True) as session:
        user_id = find_user_by_email(session, email)
        character_id = find_character(session, character)
        episode = repo.create_episode(
            session, character_id=character_id, user_id=user_id, title=title or f"with {character}"
        )
        return episode.id


def _episode_owner(session: Session, episode_id: str) -> uuid.UUID:
    from avatar_pipeline.catalog.models import Episode

    try:
        episode = session.get(Episode, uuid.UUID(episode_id))
    except ValueError:
        raise LookupError(f"{episode_id!r} is not an episode id (a UUID)") from None
    if episode is None:
        raise LookupError(f"no episode {episode_id}; create one with `episodes create`")
    return episode.user_id


def say(settings: Settings, episode_id: str, text: str, role: str) -> uuid.UUID:
    from avatar_pipeline.catalog.db import session_scope
    from avatar_pipeline.catalog.episode_messages import append_message

    with _catalog(settings) as factory, session_scope(factory, write=True) as session:
        owner = _episode_owner(session, episode_id)
        message = append_message(
            session, episode_id=episode_id, user_id=owner, content=text, role=role
        )
        return message.id


def draw_scene(
    settings: Settings, episode_id: str, *, moment: str | None, emotion: str | None, size: int
) -> dict[str, object]:
    """Generate one scene of the episode with the configured writer, provider and scorer."""
    from avatar_pipeline.catalog.db import session_scope
    from avatar_pipeline.imaging.factory import build_image_service
    from avatar_pipeline.scenes.consistency import scene_embedder
    from avatar_pipeline.scenes.factory import build_scene_writer
    from avatar_pipeline.serving.scene_flow import SceneRequest, generate_scene
    from avatar_pipeline.storage.factory import build_object_store

    with _catalog(settings) as factory:
        with session_scope(factory) as session:
            owner = _episode_owner(session, episode_id)
        store = build_object_store(settings, create_buckets=True)
        store.ensure_buckets()
        image_service = build_image_service(settings)

        async def run() -> object:
            try:
                return await generate_scene(
                    SceneRequest(owner, uuid.UUID(episode_id), moment, emotion, size, size),
                    session_factory=factory,
                    store=store,
                    image_service=image_service,
                    url_ttl_seconds=settings.signed_url_ttl_seconds,
                    writer=build_scene_writer(settings, image_service),
                    embedder=scene_embedder(settings),
                    context_limit=settings.scene_context_messages,
                )
            finally:
                await image_service.aclose()

        result = asyncio.run(run())
    scene = result.scene  # type: ignore[attr-defined]
    meta = scene.generation_metadata
    return {
        "scene_id": str(scene.id),
        "kit_id": str(scene.avatar_kit_id) if scene.avatar_kit_id else None,
        "emotion": meta.get("emotion"),
        "expression": meta.get("expression"),
        "consistency_score": scene.consistency_score,
        "writer": meta.get("scene_writer", {}).get("writer"),
        "path": f"scenes/{scene.storage_path}",
        "prompt": scene.prompt,
    }


def cmd_episodes(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "create":
        print(create_episode(settings, email=args.user, character=args.character, title=args.title))
    elif args.action == "say":
        message_id = say(settings, args.episode, args.text, args.role)
        print(f"message {message_id} added to episode {args.episode}")
    elif args.action == "scene":
        info = draw_scene(
            settings, args.episode, moment=args.moment, emotion=args.emotion, size=args.size
        )
        for key, value in info.items():
            print(f"{key:18} {value}")
    return 0


def register(
    sub: argparse._SubParsersAction,
) -> dict[str, Callable[[Settings, argparse.Namespace], int]]:
    episodes = sub.add_parser("episodes", help="local episodes: create, add messages, draw a scene")
    actions = episodes.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="create an episode; prints its id")
    create.add_argument("--user", required=True, help="the user's email (see `users create`)")
    create.add_argument("--character", required=True, help="the character's name or id")
    create.add_argument("--title", help="the episode's title (default: 'with <character>')")
    say_ = actions.add_parser("say", help="append a message to an episode")
    say_.add_argument("episode", help="episode id")
    say_.add_argument("text")
    say_.add_argument("--role", choices=["user", "assistant"], default="user",
                      help="'assistant' is the character speaking (default: user)")  # fmt: skip
    scene = actions.add_parser("scene", help="draw a scene of the episode's latest moment")
    scene.add_argument("episode", help="episode id")
    scene.add_argument("--moment", help="what happens (default: the scene writer composes it)")
    scene.add_argument("--emotion", help="the character's emotion (default: detected)")
    scene.add_argument("--size", type=int, default=512, help="width and height in pixels")
    return {"episodes": cmd_episodes}
