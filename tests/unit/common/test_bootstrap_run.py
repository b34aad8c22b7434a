"""`bootstrap.run` puts a server's main coroutine on the event loop its flags name."""

import asyncio
import gc

import pytest

from triumvir.common import bootstrap


@pytest.mark.parametrize("event_loop", ["uvloop", "asyncio"])
def test_main_runs_to_completion_on_the_named_loop(event_loop: str) -> None:
    seen: list[str] = []

    async def main() -> None:
        await asyncio.sleep(0)
        seen.append(bootstrap.loop_name(asyncio.get_running_loop()))

    bootstrap.run(main(), event_loop)
    assert seen == [event_loop]


def test_an_error_in_main_reaches_the_caller() -> None:
    async def main() -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        bootstrap.run(main(), "uvloop")


def test_the_young_generation_is_collected_less_often_while_main_runs() -> None:
    before = gc.get_threshold()
    seen: list[tuple[int, ...]] = []

    async def main() -> None:
        seen.append(gc.get_threshold())

    bootstrap.run(main(), "uvloop")
    assert seen == [(bootstrap.GC_YOUNG_THRESHOLD, *before[1:])]
    assert before[0] < bootstrap.GC_YOUNG_THRESHOLD
    assert gc.get_threshold() == before
