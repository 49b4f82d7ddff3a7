"""The worker's state, and parking beside it."""

from __future__ import annotations

from protocol import WorkerState
from pyworker.lifecycle import Lifecycle


def ready_lifecycle() -> Lifecycle:
    lifecycle = Lifecycle(clock=lambda: 0.0)
    lifecycle.mark_ready(max_new_tokens_default=20)
    lifecycle.changed.clear()
    return lifecycle


def test_a_parked_worker_serves_nothing_and_says_so_at_once() -> None:
    lifecycle = ready_lifecycle()
    lifecycle.park()
    assert (lifecycle.serving, lifecycle.reported_state) == (False, WorkerState.PARKED)
    assert lifecycle.changed.is_set()  # the reporter wakes
    lifecycle.changed.clear()
    lifecycle.resume()
    assert (lifecycle.serving, lifecycle.reported_state) == (True, WorkerState.READY)
    assert lifecycle.changed.is_set()


def test_the_backend_coming_back_does_not_resume_a_parked_worker() -> None:
    """The supervisor's own transitions (error, then ready again after a new benchmark) leave
    parking alone: only `resume()` ends it."""
    lifecycle = ready_lifecycle()
    lifecycle.park()
    lifecycle.move_to(WorkerState.ERROR, "backend /health is failing")
    assert lifecycle.reported_state is WorkerState.ERROR  # an error shows through parking
    lifecycle.mark_ready(max_new_tokens_default=20)
    assert (lifecycle.serving, lifecycle.reported_state) == (False, WorkerState.PARKED)


def test_a_draining_worker_is_neither_parked_nor_resumed() -> None:
    lifecycle = ready_lifecycle()
    lifecycle.move_to(WorkerState.DRAINING)
    lifecycle.park()
    lifecycle.resume()
    assert (lifecycle.parked, lifecycle.reported_state) == (False, WorkerState.DRAINING)
