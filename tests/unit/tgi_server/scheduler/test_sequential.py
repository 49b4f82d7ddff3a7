"""The sequential scheduler, with a scripted model: order, cancellation, failures."""

from __future__ import annotations

from tests.unit.tgi_server.conftest import ByteCodec, ScriptedRunner, run_until_idle
from tgi_server.errors import GenerationError
from tgi_server.generation.events import EngineEvent, FailureEvent, TokenEvent
from tgi_server.scheduler.base import Job
from tgi_server.scheduler.sequential import SequentialScheduler
from tgi_server.validation import SamplingParams, ValidatedRequest

CODEC = ByteCodec()


def job(max_new_tokens: int, inbox: list[EngineEvent], prompt: str = "Hi") -> Job:
    request = ValidatedRequest(
        inputs=prompt,
        input_ids=tuple(CODEC.encode(prompt)),
        sampling=SamplingParams(),
        max_new_tokens=max_new_tokens,
    )
    return Job(request=request, emit=inbox.append)


def scheduler(runner: ScriptedRunner) -> SequentialScheduler:
    return SequentialScheduler(runner, CODEC, {ByteCodec.EOS})


def texts(events: list[EngineEvent]) -> str:
    return "".join(event.token.text for event in events if isinstance(event, TokenEvent))


def test_jobs_run_first_come_first_served_one_at_a_time() -> None:
    runner = ScriptedRunner([ord("a"), ord("b")])
    target = scheduler(runner)
    first: list[EngineEvent] = []
    second: list[EngineEvent] = []
    target.add(job(3, first))
    target.add(job(2, second))
    assert run_until_idle(target) == 5
    assert texts(first) == "aba"
    assert texts(second) == "ab"
    assert [kind for kind, _ in runner.calls] == [
        "prefill",
        "decode",
        "decode",
        "prefill",
        "decode",
    ]
    last = first[-1]
    assert isinstance(last, TokenEvent)
    assert last.completion is not None
    assert last.completion.generated_text == "aba"
    assert last.completion.queued_at <= last.completion.started_at <= last.completion.finished_at
    assert target.stats.completed == 2


def test_a_cancelled_job_is_dropped_at_the_next_step_and_the_next_one_starts() -> None:
    runner = ScriptedRunner([ord("z")])
    target = scheduler(runner)
    long_events: list[EngineEvent] = []
    short_events: list[EngineEvent] = []
    long_job = job(1000, long_events)
    target.add(long_job)
    target.add(job(1, short_events))
    target.step()
    target.step()
    long_job.cancelled.set()
    target.step()  # drops the long job and prefills the short one in the same step
    assert len(long_events) == 2
    assert texts(short_events) == "z"
    assert target.stats.cancelled == 1
    assert not target.has_work()


def test_a_job_cancelled_while_waiting_never_reaches_the_model() -> None:
    runner = ScriptedRunner([ord("q")])
    target = scheduler(runner)
    events: list[EngineEvent] = []
    waiting = job(5, events)
    waiting.cancelled.set()
    target.add(waiting)
    run_until_idle(target)
    assert events == []
    assert runner.calls == []
    assert target.stats.cancelled == 1


def test_a_model_failure_fails_only_its_job_with_a_424() -> None:
    runner = ScriptedRunner([ord("x")], fail_on_decode=2)
    target = scheduler(runner)
    failing: list[EngineEvent] = []
    next_one: list[EngineEvent] = []
    target.add(job(10, failing))
    target.add(job(1, next_one))
    run_until_idle(target)
    failure = failing[-1]
    assert isinstance(failure, FailureEvent)
    assert isinstance(failure.error, GenerationError)
    assert failure.error.status == 424
    assert failure.error.message == "Request failed during generation: Server error: boom"
    assert texts(next_one) == "x"
    assert target.stats.failed == 1


def test_abort_all_fails_running_and_waiting_jobs() -> None:
    target = scheduler(ScriptedRunner([ord("y")]))
    running: list[EngineEvent] = []
    waiting: list[EngineEvent] = []
    target.add(job(10, running))
    target.add(job(10, waiting))
    target.step()
    target.abort_all(GenerationError("Server error: shutting down"))
    assert isinstance(running[-1], FailureEvent)
    assert isinstance(waiting[-1], FailureEvent)
    assert not target.has_work()
