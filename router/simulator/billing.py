"""What a fleet costs as a provider bills it: compute by spell, with a minimum, and storage.

A worker's compute is billed from each provider call that brings it up (a start, or a resume
from the cold pool) until it stops (parked in the cold pool, failed, or destroyed): one
**spell**, its load time included, billed for at least `min_billed_s`. Its disk is billed for
every second it exists, parked or not, but not once it has failed.

The defaults are Vast's terms (docs/autoscaler.md cites them): billing by the second with no
minimum; compute while loading, serving and draining; storage in every state but Error. The
prices are not Vast's (a host sets its own): compute at 1.00 per worker-hour, so that costs
read as worker-hours, and storage at 0.02 per worker-hour, an assumption to set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["BillingSpec", "Invoice"]

HOUR_S = 3600.0


@dataclass(frozen=True)
class BillingSpec:
    compute_per_hour: float = 1.0  # a worker's GPU instance, per hour billed
    storage_per_hour: float = 0.02  # a worker's disk, per hour it exists
    min_billed_s: float = 0.0  # the least a spell is billed (Vast: none, per second)

    def invoice(self, spells_s: Sequence[float], storage_s: float) -> Invoice:
        """The bill for compute spells of the given lengths and `storage_s` disk-seconds."""
        billed_s = sum(max(length, self.min_billed_s) for length in spells_s)
        compute = billed_s * self.compute_per_hour / HOUR_S
        storage = storage_s * self.storage_per_hour / HOUR_S
        return Invoice(len(spells_s), billed_s, storage_s, compute, storage)


@dataclass(frozen=True)
class Invoice:
    spells: int  # starts and resumes billed
    billed_s: float  # compute seconds billed, minimums included
    storage_s: float  # disk-seconds
    compute_cost: float
    storage_cost: float

    @property
    def cost(self) -> float:
        return self.compute_cost + self.storage_cost
