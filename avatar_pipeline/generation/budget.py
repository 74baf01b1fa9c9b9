"""The per-kit cost budget: refuses a provider call that could exceed it."""

from __future__ import annotations

import threading

from avatar_pipeline.imaging.types import BudgetExceededError


class KitBudget:
    """Per-kit cost budget: refuses a provider call that could exceed it."""

    def __init__(self, kit_id: str, limit: float, already_spent: float, estimate: float):
        self.kit_id, self.limit, self.spent, self.estimate = kit_id, limit, already_spent, estimate
        self._lock = threading.Lock()

    def reserve(self, slot: str) -> None:
        with self._lock:
            if self.spent + self.estimate > self.limit + 1e-9:
                raise BudgetExceededError(
                    f"kit {self.kit_id}: generating {slot} would exceed the kit's cost budget "
                    f"(spent ${self.spent:.2f} of ${self.limit:.2f}, next image about "
                    f"${self.estimate:.2f}); raise AVATAR_KIT_COST_BUDGET_USD or reduce "
                    "candidates_per_slot"
                )
            self.spent += self.estimate

    def settle(self, estimated: float, actual: float) -> None:
        with self._lock:
            self.spent += actual - estimated
