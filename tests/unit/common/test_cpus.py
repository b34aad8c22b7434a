import os
import subprocess
import sys
import textwrap

import pytest

from triumvir.common.cpus import CpuListError, check_allowed, parse_cpu_list, spread


@pytest.mark.parametrize(
    ("text", "cpus"),
    [("0", (0,)), ("2-3", (2, 3)), ("0,4-6", (0, 4, 5, 6)), (" 3 , 1 ,1", (1, 3))],
)
def test_cpu_lists_are_read_as_taskset_reads_them(text: str, cpus: tuple[int, ...]) -> None:
    assert parse_cpu_list(text) == cpus


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty CPU list"),
        (",", "empty CPU list"),
        ("a", "bad CPU list 'a'"),
        ("1-", "bad CPU list"),
        ("-1", "bad CPU list"),
        ("3-1", "runs backwards"),
        ("0-1000000000", "CPU ids go up to 8191"),
    ],
)
def test_a_malformed_cpu_list_is_refused_with_an_example(text: str, message: str) -> None:
    with pytest.raises(CpuListError) as caught:
        parse_cpu_list(text)
    assert message in str(caught.value)


def test_cpus_outside_the_process_mask_are_named() -> None:
    beyond = max(os.sched_getaffinity(0)) + 1
    with pytest.raises(CpuListError) as caught:
        check_allowed([beyond])
    assert f"CPUs [{beyond}] are not available" in str(caught.value)
    check_allowed(sorted(os.sched_getaffinity(0)))


def test_replicas_take_the_cpus_in_turn() -> None:
    assert [spread(n, (0, 1)) for n in (1, 2, 3)] == [0, 1, 0]
    assert [spread(n, (7, 5, 6)) for n in (1, 2, 3, 4)] == [5, 6, 7, 5]


def test_pinning_covers_threads_running_before_and_started_after() -> None:
    cpu = max(os.sched_getaffinity(0))
    # In a child process: pinning this one would pin the test runner.
    script = textwrap.dedent(
        f"""
        import os, threading
        from triumvir.common.cpus import pin_process
        stop = threading.Event()
        early = threading.Thread(target=stop.wait)
        early.start()
        pin_process([{cpu}])
        late = threading.Thread(target=stop.wait)
        late.start()
        masks = {{tid: os.sched_getaffinity(int(tid)) for tid in os.listdir("/proc/self/task")}}
        stop.set()
        print(len(masks), sorted({{tuple(sorted(m)) for m in masks.values()}}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.split(maxsplit=1) == ["3", f"[({cpu},)]\n"]
