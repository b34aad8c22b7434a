"""How long a request may wait: the caller's deadline when it set one, else the server's own
bound, which answers DEADLINE_EXCEEDED with a message saying the outcome is unknown."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest

from triumvir.consensus import servicers


class _Aborted(Exception):
    pass


class _Context:
    def __init__(self, remaining: float | None) -> None:
        self._remaining = remaining
        self.status: grpc.Status | None = None

    def time_remaining(self) -> float | None:
        return self._remaining

    def invocation_metadata(self) -> tuple[()]:
        return ()

    async def abort_with_status(self, status: grpc.Status) -> None:
        self.status = status
        raise _Aborted


async def _never() -> Any:
    await asyncio.Event().wait()


def test_without_a_deadline_the_server_bound_answers_with_an_unknown_outcome(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(servicers, "WRITE_TIMEOUT_S_DEFAULT", 0.05)
    context = _Context(remaining=None)
    with pytest.raises(_Aborted):
        asyncio.run(servicers._guard(context, _never))  # type: ignore[arg-type]
    assert context.status is not None
    assert context.status.code is grpc.StatusCode.DEADLINE_EXCEEDED
    assert "outcome is unknown" in context.status.details


def test_a_deadline_that_already_passed_is_refused_before_any_work() -> None:
    context = _Context(remaining=-0.1)
    started: list[bool] = []

    async def work() -> None:
        started.append(True)

    with pytest.raises(_Aborted):
        asyncio.run(servicers._guard(context, work))  # type: ignore[arg-type]
    assert context.status is not None
    assert context.status.code is grpc.StatusCode.DEADLINE_EXCEEDED
    assert started == []


def test_a_request_with_its_own_deadline_sets_no_timer_of_the_servers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    timers: list[float] = []
    real_timeout = asyncio.timeout

    def counting_timeout(delay: float) -> Any:
        timers.append(delay)
        return real_timeout(delay)

    monkeypatch.setattr(servicers.asyncio, "timeout", counting_timeout)

    async def work() -> str:
        return "done"

    assert asyncio.run(servicers._guard(_Context(remaining=2.0), work)) == "done"  # type: ignore[arg-type]
    assert timers == []
    assert asyncio.run(servicers._guard(_Context(remaining=None), work)) == "done"  # type: ignore[arg-type]
    assert timers == [servicers.WRITE_TIMEOUT_S_DEFAULT]
