"""`bootstrap.run` puts a server's main coroutine on the event loop its flags name."""

import asyncio

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
