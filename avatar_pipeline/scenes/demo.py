"""The demo's scene step: each demo character's approved kit becomes its active kit,
a demo user gets an episode per character, and a few conversation snippets become scenes —
written by the configured scene writer, drawn from the kit, scored against its anchor.

Idempotent: an episode that already has its scenes is left alone on a second run.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from avatar_pipeline.catalog import repository as repo
from avatar_pipeline.catalog.db import session_scope
from avatar_pipeline.catalog.episode_messages import append_message
from avatar_pipeline.catalog.models import AvatarKit, Character, Episode, User
from avatar_pipeline.imaging.service import ImageService
from avatar_pipeline.scenes.consistency import scene_embedder
from avatar_pipeline.scenes.drift import kit_drift
from avatar_pipeline.scenes.factory import build_scene_writer
from avatar_pipeline.serving.scene_flow import SceneRequest, generate_scene
from avatar_pipeline.settings import Settings
from avatar_pipeline.storage.base import ObjectStore

DEMO_USER_EMAIL = "demo-user@example.com"
SCENE_PX = 512
Snippet = tuple[tuple[str, str], ...]  # (role, text) turns, oldest first

DEMO_CONVERSATIONS: dict[str, tuple[Snippet, ...]] = {
    "Yuki": (
        (
            ("user", "Want to grab a coffee at that little cafe by the station?"),
            ("assistant", "*sips her latte and smiles* I'm so happy you asked! This is perfect 😊"),
        ),
        (
            ("user", "I failed my exam... I studied so hard."),
            ("assistant", "*looks down at her cup* Oh no... I'm really sorry. That's so sad 😢"),
        ),
        (
            ("user", "Guess what, I got us tickets to the summer festival tomorrow!"),
            ("assistant", "No way! Fireworks?! I can't wait, I'm SO excited!!"),
        ),
    ),
    "Kenji": (
        (
            ("user", "Why does the old library close so early?"),
            (
                "assistant",
                "*leans on the bookshelf* Hmm, I wonder... I'm curious too, tell me more 🤔",
            ),
        ),
        (
            ("user", "Someone took your seat at the game again."),
            ("assistant", "Ugh, seriously? That's so annoying 😤"),
        ),
        (
            ("user", "Let's just walk home through the park, it's a calm night."),
            ("assistant", "*puts his hands in his hoodie pockets* Yeah. Quiet and peaceful 😌"),
        ),
    ),
}


@dataclass(frozen=True)
class DemoScene:
    character: str
    scene_id: str
    emotion: str | None
    expression: str | None
    score: float | None
    verdict: str
    writer: str


def _activate_kits(session: Session) -> dict[str, str]:
    """Point each demo character at an approved (active) kit: its default kit when approved,
    else another approved kit of it; a character with none falls back to text-to-image."""
    states: dict[str, str] = {}
    for name in DEMO_CONVERSATIONS:
        character = session.scalar(select(Character).where(Character.name == name))
        if character is None:
            states[name] = "no such character"
            continue
        kits = list(
            session.scalars(
                select(AvatarKit)
                .where(AvatarKit.character_id == character.id, AvatarKit.status == "active")
                .order_by(AvatarKit.is_default.desc(), AvatarKit.name)
            )
        )
        if not kits:
            states[name] = "no approved kit: scenes fall back to text-to-image"
            continue
        repo.set_active_kit(session, character.id, kits[0].id)
        states[name] = f"active kit {kits[0].name}"
    return states


def _episode(session: Session, user_id: uuid.UUID, name: str) -> tuple[uuid.UUID, bool]:
    """The demo user's episode with ``name`` (created if absent); True when it has scenes."""
    character = session.scalar(select(Character).where(Character.name == name))
    assert character is not None
    title = f"Demo: an evening with {name}"
    episode = session.scalar(
        select(Episode).where(
            Episode.user_id == user_id, Episode.character_id == character.id, Episode.title == title
        )
    )
    if episode is None:
        episode = repo.create_episode(
            session, character_id=character.id, user_id=user_id, title=title
        )
        return episode.id, False
    return episode.id, bool(
        repo.list_episode_scenes(session, user_id=user_id, episode_id=episode.id)
    )


def run_demo_scenes(
    settings: Settings,
    session_factory: sessionmaker[Session],
    store: ObjectStore,
    image_service: ImageService,
) -> list[str]:
    """Run the scene step; returns the lines to print."""
    with session_scope(session_factory, write=True) as session:
        states = _activate_kits(session)
        user = session.scalar(select(User).where(User.email == DEMO_USER_EMAIL))
        if user is None:
            user = repo.create_user(session, email=DEMO_USER_EMAIL)
        user_id = user.id
        episodes = {
            name: _episode(session, user_id, name)
            for name in DEMO_CONVERSATIONS
            if "no such" not in states[name]
        }
    writer = build_scene_writer(settings, image_service)
    embedder = scene_embedder(settings)
    made: list[DemoScene] = []

    async def draw(name: str, episode_id: uuid.UUID, seed: int) -> None:
        result = await generate_scene(
            SceneRequest(user_id, episode_id, width=SCENE_PX, height=SCENE_PX, seed=seed),
            session_factory=session_factory,
            store=store,
            image_service=image_service,
            url_ttl_seconds=settings.signed_url_ttl_seconds,
            writer=writer,
            embedder=embedder,
            context_limit=settings.scene_context_messages,
        )
        draft, consistency = result.draft, result.consistency
        assert draft is not None and consistency is not None
        made.append(DemoScene(name, str(result.scene.id), draft.emotion, draft.expression,
                              consistency.score, consistency.verdict, draft.writer))  # fmt: skip

    async def run_all() -> None:
        for name, (episode_id, done) in episodes.items():
            if done:
                continue
            for i, snippet in enumerate(DEMO_CONVERSATIONS[name]):
                with session_scope(session_factory, write=True) as session:
                    for role, text in snippet:
                        append_message(
                            session, episode_id=episode_id, user_id=user_id, content=text, role=role
                        )
                await draw(name, episode_id, seed=1000 + i)

    asyncio.run(run_all())
    lines = [f"  {name:6} {state}" for name, state in states.items()]
    for s in made:
        score = f"{s.score:.3f}" if s.score is not None else "  -  "
        lines.append(
            f"  {s.character:6} scene {s.scene_id[:8]}  emotion {s.emotion or '-':13} "
            f"expression {s.expression or '-':9} identity {score} ({s.verdict}, {s.writer})"
        )
    if not made:
        lines.append("  (scenes already drawn on an earlier run)")
    with session_scope(session_factory) as session:
        kit_ids = {k for k in (c.active_avatar_kit_id for c in session.scalars(select(Character)))
                   if k is not None}  # fmt: skip
        for kit_id in sorted(kit_ids, key=str):
            drift = kit_drift(
                session,
                kit_id,
                window=settings.scene_drift_window,
                min_scenes=settings.scene_drift_min_scenes,
                margin=settings.scene_drift_margin,
            )
            lines.append(f"  drift  {drift.kit_name:14} {drift.status:10} {drift.reason}")
    return lines
