from __future__ import annotations

from router.autoscaler.decision import Action, ActionKind
from router.autoscaler.observation import Observation, WorkerPhase, WorkerView
from router.autoscaler.params import EndpointParams
from router.autoscaler.plan import plan_actions

PARAMS = EndpointParams(max_workers=6, cold_workers=0, max_step_up=10, max_step_down=10)


def fleet(*phases: WorkerPhase, load: tuple[float, ...] = ()) -> Observation:
    views = tuple(
        WorkerView(
            id=f"w{i}",
            phase=phase,
            max_perf=100.0,
            in_flight_tokens=load[i] if i < len(load) else 0.0,
            since=float(i),
        )
        for i, phase in enumerate(phases)
    )
    return Observation(now=100.0, workers=views)


def kinds(actions: list[Action]) -> list[str]:
    return [str(action) for action in actions]


def test_scaling_up_resumes_cold_workers_before_creating_any() -> None:
    obs = fleet(WorkerPhase.READY, WorkerPhase.COLD, WorkerPhase.COLD)
    actions = plan_actions(obs, 4, 0, PARAMS)
    assert kinds(actions) == ["resume w1", "resume w2", "start"]


def test_nothing_is_created_past_max_workers_counting_draining_and_cold() -> None:
    obs = fleet(WorkerPhase.READY, WorkerPhase.DRAINING, WorkerPhase.DRAINING, WorkerPhase.COLD)
    actions = plan_actions(obs, 6, 1, PARAMS)
    starts = [a for a in actions if a.kind in (ActionKind.START, ActionKind.START_COLD)]
    assert len(starts) == 2  # 4 exist; max 6
    assert kinds(actions)[0] == "resume w3"


def test_scaling_down_tears_down_workers_not_yet_serving_first() -> None:
    obs = fleet(WorkerPhase.READY, WorkerPhase.READY, WorkerPhase.LOADING, load=(5.0, 1.0))
    actions = plan_actions(obs, 1, 0, PARAMS)
    assert kinds(actions) == ["destroy w2", "drain w1"]  # then the least loaded ready one


def test_drained_workers_fill_the_cold_pool_first() -> None:
    obs = fleet(WorkerPhase.READY, WorkerPhase.READY, WorkerPhase.READY)
    actions = plan_actions(obs, 1, 1, PARAMS)
    assert kinds(actions) == ["drain w0 then cold", "drain w1"]


def test_a_cold_pool_above_target_loses_its_newest_members() -> None:
    obs = fleet(WorkerPhase.COLD, WorkerPhase.COLD, WorkerPhase.WARMING)
    assert kinds(plan_actions(obs, 0, 1, PARAMS)) == ["destroy w2", "destroy w1"]


def test_steps_are_bounded_per_tick() -> None:
    params = EndpointParams(max_workers=100, cold_workers=0, max_step_up=3, max_step_down=2)
    assert len(plan_actions(fleet(), 50, 0, params)) == 3
    ready = fleet(*[WorkerPhase.READY] * 10)
    assert len(plan_actions(ready, 0, 0, params)) == 2


def test_failed_workers_are_destroyed() -> None:
    obs = fleet(WorkerPhase.ERROR, WorkerPhase.READY)
    assert kinds(plan_actions(obs, 1, 0, PARAMS)) == ["destroy w0"]


def test_new_cold_workers_are_created_only_up_to_the_given_floor() -> None:
    actions = plan_actions(fleet(), 0, 5, PARAMS, create_cold_to=2)
    assert kinds(actions) == ["start_cold", "start_cold"]
