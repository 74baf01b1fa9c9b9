"""Write transactions under contention: SQLite takes the write lock up front and waits for it
(BEGIN IMMEDIATE, busy timeout honoured); both engines re-run a transaction that lost a race."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from avatar_pipeline.catalog import repository as repo
from avatar_pipeline.catalog.db import (
    is_retryable,
    make_engine,
    make_session_factory,
    session_scope,
    write_transaction,
)
from avatar_pipeline.catalog.migrate import upgrade_database
from avatar_pipeline.catalog.models import User
from avatar_pipeline_tests.db_fixtures import database_kind


def _sqlite_factory(tmp_path: Path, **connect_args: float) -> sessionmaker[Session]:
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    upgrade_database(url)
    return make_session_factory(make_engine(url, connect_args=connect_args))


def _add_user(session: Session, tag: str) -> int:
    """Read, then write: the shape that fails under a deferred BEGIN."""
    before = session.scalar(select(func.count()).select_from(User)) or 0
    repo.create_user(session, email=f"{tag}@example.com", role="user")
    return before


def test_deferred_read_then_write_loses_at_once_write_scope_waits(tmp_path: Path) -> None:
    factory = _sqlite_factory(tmp_path)
    # Why: a deferred transaction that read before another connection committed cannot upgrade
    # to a writer; SQLite answers "database is locked" at once, whatever the busy timeout.
    started = time.monotonic()
    with (
        pytest.raises(OperationalError, match="database is locked"),
        session_scope(factory, write=False) as reader,
    ):
        reader.scalar(select(func.count()).select_from(User))
        with session_scope(factory, write=True) as other:
            repo.create_user(other, email="first@example.com", role="user")
        repo.create_user(reader, email="second@example.com", role="user")
        reader.flush()
    assert time.monotonic() - started < 5  # the 30 s busy timeout was never waited for

    # A write scope (the default) takes the lock before its first read: the second waits.
    holder_in = threading.Event()

    def second_writer() -> int:
        holder_in.wait(5)
        with session_scope(factory, write=True) as session:
            return _add_user(session, "waiter")

    with ThreadPoolExecutor(1) as pool:
        with session_scope(factory, write=True) as holder:
            _add_user(holder, "holder")
            future = pool.submit(second_writer)
            holder_in.set()
            time.sleep(0.5)  # the waiter is blocked on the lock meanwhile
            assert not future.done()
        # it read after the holder's commit: "first" and "holder" were there
        assert future.result(timeout=10) == 2
    with session_scope(factory) as session:
        assert session.scalar(select(func.count()).select_from(User)) == 3


def test_write_transaction_retries_a_lock_that_outlived_the_busy_timeout(tmp_path: Path) -> None:
    factory = _sqlite_factory(tmp_path, timeout=0.2)
    attempts: list[int] = []

    def write(session: Session) -> int:
        attempts.append(1)
        return _add_user(session, f"retry-{len(attempts)}")

    release = threading.Event()

    def hold_lock() -> None:
        with session_scope(factory, write=True) as session:
            _add_user(session, "holder")
            release.wait(5)

    holder = threading.Thread(target=hold_lock)
    holder.start()
    time.sleep(0.2)
    threading.Timer(0.5, release.set).start()
    try:
        write_transaction(factory, write, attempts=8, backoff_seconds=0.1)
    finally:
        release.set()
        holder.join()
    with session_scope(factory) as session:
        assert session.scalar(select(func.count()).select_from(User)) == 2
    # the first BEGIN IMMEDIATE (at fn's first read) timed out after 0.2 s; the re-run committed
    assert len(attempts) >= 2


def test_session_scope_is_a_write_transaction_by_default(tmp_path: Path) -> None:
    factory = _sqlite_factory(tmp_path)
    statements: list[str] = []
    engine = factory.kw["bind"]
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    with session_scope(factory) as session:
        _add_user(session, "default")
    with session_scope(factory, write=False) as session:
        session.scalar(select(func.count()).select_from(User))
    assert statements.count("BEGIN IMMEDIATE") == 1 and statements.count("BEGIN") == 1


def test_write_transaction_gives_up_and_raises_after_its_attempts(tmp_path: Path) -> None:
    factory = _sqlite_factory(tmp_path, timeout=0.05)
    with session_scope(factory, write=True) as holder:
        _add_user(holder, "holder")
        with pytest.raises(OperationalError, match="database is locked") as raised:
            write_transaction(factory, lambda s: _add_user(s, "loser"), attempts=2)
        assert is_retryable(raised.value)
    with session_scope(factory) as session:
        assert session.scalar(select(func.count()).select_from(User)) == 1


def test_concurrent_read_then_write_transactions_all_commit(
    migrated_session_factory: sessionmaker[Session],
) -> None:
    factory = migrated_session_factory
    workers, per_worker = 16, 4

    def work(worker: int) -> None:
        for i in range(per_worker):
            write_transaction(factory, lambda s, tag=f"w{worker}-{i}": _add_user(s, tag))

    with ThreadPoolExecutor(workers) as pool:
        for future in [pool.submit(work, w) for w in range(workers)]:
            future.result(timeout=60)
    with session_scope(factory) as session:
        assert session.scalar(select(func.count()).select_from(User)) == workers * per_worker


@pytest.mark.parametrize("catalog_url", ["postgresql"], indirect=True)
def test_postgres_deadlock_is_retried(migrated_session_factory: sessionmaker[Session]) -> None:
    """Two transactions lock two rows in opposite orders: PostgreSQL aborts one (40P01) and
    ``write_transaction`` runs it again, so both commit."""
    factory = migrated_session_factory
    with session_scope(factory) as session:
        ids = [repo.create_user(session, email=f"u{i}@example.com").id for i in range(2)]
    assert database_kind(str(factory.kw["bind"].url)) == "postgresql"
    barrier = threading.Barrier(2, timeout=10)
    calls = {0: 0, 1: 0}

    def lock_both(order: int) -> None:
        first, second = ids if order == 0 else ids[::-1]

        def fn(session: Session) -> None:
            calls[order] += 1
            bump = text("UPDATE users SET role = role WHERE id = :id")
            session.execute(bump, {"id": first})
            if calls[order] == 1:
                barrier.wait()
            session.execute(bump, {"id": second})

        write_transaction(factory, fn, attempts=3)

    with ThreadPoolExecutor(2) as pool:
        for future in [pool.submit(lock_both, order) for order in (0, 1)]:
            future.result(timeout=30)
    assert sorted(calls.values()) == [1, 2]  # exactly one was the deadlock victim and re-ran


def test_is_retryable_only_for_races() -> None:
    assert not is_retryable(ValueError("database is locked"))
    assert not is_retryable(OperationalError("SELECT 1", {}, Exception("no such table: x")))
