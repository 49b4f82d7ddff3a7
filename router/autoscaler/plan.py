"""From targets to actions: bounded steps, the cold pool used first, cheap workers removed first.

Scaling up resumes cold workers before it creates new ones. Scaling down tears down workers
that are not serving yet before ready ones, and drains the least-loaded ready workers (to the
cold pool while it is short, else for good). Nothing is created past `max_workers`, counting
every worker that still exists (draining and cold ones included).
"""

from __future__ import annotations

from router.autoscaler.decision import Action, ActionKind
from router.autoscaler.observation import Observation, WorkerPhase, WorkerView
from router.autoscaler.params import EndpointParams

__all__ = ["clamp_targets", "plan_actions"]


def clamp_targets(active: int, cold: int, params: EndpointParams) -> tuple[int, int]:
    """Targets within [0, max_workers] in total, the active one first."""
    active = max(0, min(active, params.max_workers))
    cold = max(0, min(cold, params.max_workers - active))
    return active, cold


def plan_actions(
    obs: Observation,
    active_target: int,
    cold_target: int,
    params: EndpointParams,
    *,
    create_cold_to: int | None = None,
) -> list[Action]:
    """Actions toward the targets. New workers are created for the cold pool only while it is
    below `create_cold_to` (default: the cold target); above that it fills with drained ones."""
    actions = [Action(ActionKind.DESTROY, w.id) for w in obs.in_phase(WorkerPhase.ERROR)]
    total, pool = obs.total, obs.cold_pool
    if obs.active < active_target:
        started, pool = _scale_up(obs, active_target - obs.active, total, params, actions)
        total += started
    elif obs.active > active_target:
        pool = _scale_down(obs, obs.active - active_target, pool, cold_target, params, actions)
    build_to = cold_target if create_cold_to is None else min(cold_target, create_cold_to)
    _fit_cold_pool(obs, pool, cold_target, build_to, total, params, actions)
    return actions


def _scale_up(
    obs: Observation, need: int, total: int, params: EndpointParams, actions: list[Action]
) -> tuple[int, int]:
    need = min(need, params.max_step_up)
    cold = sorted(obs.in_phase(WorkerPhase.COLD), key=lambda w: w.since)
    for worker in cold[:need]:
        actions.append(Action(ActionKind.RESUME, worker.id))
    resumed = min(need, len(cold))
    starts = max(0, min(need - resumed, params.max_workers - total))
    actions.extend(Action(ActionKind.START) for _ in range(starts))
    return starts, obs.cold_pool - resumed


def _scale_down(
    obs: Observation,
    excess: int,
    pool: int,
    cold_target: int,
    params: EndpointParams,
    actions: list[Action],
) -> int:
    excess = min(excess, params.max_step_down)
    for worker in _removal_order(obs)[:excess]:
        if worker.phase is WorkerPhase.LOADING:
            actions.append(Action(ActionKind.DESTROY, worker.id))
            continue
        to_cold = pool < cold_target
        pool += int(to_cold)
        actions.append(Action(ActionKind.DRAIN, worker.id, to_cold=to_cold))
    return pool


def _removal_order(obs: Observation) -> list[WorkerView]:
    """Not yet serving first (newest first), then ready ones, least in flight first."""
    loading = sorted(obs.in_phase(WorkerPhase.LOADING), key=lambda w: -w.since)
    resuming = obs.in_phase(WorkerPhase.RESUMING)
    ready = sorted(obs.in_phase(WorkerPhase.READY), key=lambda w: (w.in_flight_tokens, w.id))
    return [*loading, *resuming, *ready]


def _fit_cold_pool(
    obs: Observation,
    pool: int,
    cold_target: int,
    build_to: int,
    total: int,
    params: EndpointParams,
    actions: list[Action],
) -> None:
    touched = {action.worker_id for action in actions}
    if pool > cold_target:
        warming = sorted(obs.in_phase(WorkerPhase.WARMING), key=lambda w: -w.since)
        cold = sorted(obs.in_phase(WorkerPhase.COLD), key=lambda w: -w.since)
        spare = [w for w in [*warming, *cold] if w.id not in touched]
        for worker in spare[: min(pool - cold_target, params.max_step_down)]:
            actions.append(Action(ActionKind.DESTROY, worker.id))
    elif pool < build_to:
        starts = max(0, min(build_to - pool, params.max_workers - total, params.max_step_up))
        actions.extend(Action(ActionKind.START_COLD) for _ in range(starts))
