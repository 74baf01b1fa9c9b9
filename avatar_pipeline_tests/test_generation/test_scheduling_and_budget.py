"""The scoring gate's order (anchors first) and the per-kit budget, in isolation."""

from __future__ import annotations

import asyncio

import pytest

from avatar_pipeline.generation.budget import KitBudget
from avatar_pipeline.generation.scheduling import PriorityGate
from avatar_pipeline.imaging.types import BudgetExceededError


async def test_waiting_anchors_go_before_waiting_expressions():
    gate, order = PriorityGate(), []

    async def job(name: str, priority: int) -> None:
        async with gate.turn(priority):
            order.append(name)
            await asyncio.sleep(0.01)

    async with gate.turn(1):  # something is being scored; others queue up behind it
        tasks = [
            asyncio.create_task(job("expression:happy", 1)),
            asyncio.create_task(job("expression:shy", 1)),
            asyncio.create_task(job("anchor_fullbody", 0)),
        ]
        await asyncio.sleep(0.01)
    await asyncio.gather(*tasks)
    assert order == ["anchor_fullbody", "expression:happy", "expression:shy"]


async def test_gate_runs_one_at_a_time():
    gate, inside, peak = PriorityGate(), 0, 0

    async def job() -> None:
        nonlocal inside, peak
        async with gate.turn(1):
            inside += 1
            peak = max(peak, inside)
            await asyncio.sleep(0.005)
            inside -= 1

    await asyncio.gather(*(job() for _ in range(6)))
    assert peak == 1


async def test_a_shared_gate_runs_its_capacity_at_once_and_every_kits_anchors_first():
    gate, inside, peak, order = PriorityGate(capacity=2), 0, 0, []

    async def job(name: str, priority: int) -> None:
        nonlocal inside, peak
        async with gate.turn(priority):
            inside += 1
            peak = max(peak, inside)
            order.append(name)
            await asyncio.sleep(0.005)
            inside -= 1

    async with gate.turn(1), gate.turn(1):  # both places taken: everyone else queues
        tasks = [asyncio.create_task(job(f"kit{k} expression", 1)) for k in range(3)]
        tasks += [asyncio.create_task(job(f"kit{k} anchor_fullbody", 0)) for k in range(3)]
        await asyncio.sleep(0.01)
        assert inside == 0 and not order
    await asyncio.gather(*tasks)
    assert peak == 2
    assert order[:3] == [f"kit{k} anchor_fullbody" for k in range(3)]
    assert sorted(order[3:]) == [f"kit{k} expression" for k in range(3)]


def test_budget_refuses_the_call_that_would_exceed_it():
    budget = KitBudget("kit-1", limit=0.10, already_spent=0.02, estimate=0.04)
    budget.reserve("anchor_portrait")
    budget.settle(0.04, 0.03)  # the provider charged less than estimated
    budget.reserve("anchor_fullbody")  # 0.05 spent + 0.04 <= 0.10
    with pytest.raises(BudgetExceededError, match=r"spent \$0\.09 of \$0\.10"):
        budget.reserve("expression:happy")
