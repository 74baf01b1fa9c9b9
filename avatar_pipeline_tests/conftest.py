"""Suite-wide hygiene for Dagster's process-global state."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _no_leaked_defs_state_storage() -> Iterator[None]:
    """Entering a DagsterInstance sets a context variable pointing at its defs-state storage;
    an instance entered in one test and collected later (e.g. exited on another thread) leaves
    it pointing at a dead weakref, and a later ``materialize()`` fails with "Attempted to resolve
    undefined DagsterInstance weakref". Clear it after every test."""
    yield
    from dagster._core.storage.defs_state.base import _current_storage

    _current_storage.set(None)
