"""The bench's own errors: bad input (exit code 2, before any load) and a target that fails."""

from __future__ import annotations

__all__ = ["BenchError", "BenchInputError", "RunAborted", "TargetDown"]


class BenchError(Exception):
    """Base of every error the bench reports to its user."""


class BenchInputError(BenchError):
    """A flag, distribution or file the bench cannot use; nothing has been sent yet."""


class TargetDown(BenchError):
    """The target did not answer, before or during the run."""


class RunAborted(BenchError):
    """The target answered in a way no further request can change (a wrong API key, say)."""
