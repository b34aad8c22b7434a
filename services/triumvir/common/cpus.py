"""Keeping a server's threads on chosen CPUs.

A triumvir server is one Python process with a few threads that hand work to each other
for every message: gRPC's own I/O threads take bytes off a socket and pass the completed
call to the thread running the event loop, and the write-ahead log may fsync on a thread
of its own. Only one of them runs Python at a time. When the kernel spreads them over
several CPUs, each hand-off wakes a thread on another CPU, and on a virtual machine waking
an idle CPU is slow. Kept on one CPU, the same hand-offs are cheap: with the three replicas
of a group on a 2-CPU machine, a leader spent about a fifth less CPU per write, and a lone
client's writes were answered 10-15% sooner. Replicas on one machine take CPUs in turn
(see `spread`), so they share one only when there are more replicas than CPUs.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence

CPU_LIST_EXAMPLE = "0, 2-3 or 0,4-7"
CPU_ID_MAX = 8191  # Linux builds for at most 8192 CPUs; a larger id is a typo


class CpuListError(ValueError):
    """A CPU list is malformed or names CPUs this process may not use."""


def parse_cpu_list(text: str) -> tuple[int, ...]:
    """`0,2-3` -> (0, 2, 3): the Linux cpu-list format, as `taskset -c` takes it."""
    cpus: set[int] = set()
    for item in filter(None, (part.strip() for part in text.split(","))):
        first, dash, last = item.partition("-")
        if not first.strip().isdigit() or (dash and not last.strip().isdigit()):
            raise CpuListError(f"bad CPU list {text!r}: expected e.g. {CPU_LIST_EXAMPLE}")
        low, high = int(first), int(last) if dash else int(first)
        if high < low:
            raise CpuListError(f"bad CPU range {item!r} in {text!r}: it runs backwards")
        if high > CPU_ID_MAX:
            raise CpuListError(f"bad CPU list {text!r}: CPU ids go up to {CPU_ID_MAX}")
        cpus.update(range(low, high + 1))
    if not cpus:
        raise CpuListError(f"empty CPU list {text!r}: expected e.g. {CPU_LIST_EXAMPLE}")
    return tuple(sorted(cpus))


def allowed_cpus() -> tuple[int, ...]:
    """The CPUs this process may run on (its affinity mask; a container's cpuset)."""
    if not hasattr(os, "sched_getaffinity"):
        return ()
    return tuple(sorted(os.sched_getaffinity(0)))


def check_allowed(cpus: Sequence[int]) -> None:
    allowed = allowed_cpus()
    if not allowed:
        raise CpuListError("this platform cannot keep a process on chosen CPUs")
    outside = sorted(set(cpus) - set(allowed))
    if outside:
        raise CpuListError(
            f"CPUs {outside} are not available to this process; it may use "
            f"{','.join(map(str, allowed))}"
        )


def pin_process(cpus: Sequence[int]) -> None:
    """Keep every thread of this process, and every thread it starts later, on `cpus`.

    A new thread inherits its creator's mask, so setting the mask of each thread that
    exists now covers the threads libraries start afterwards too. The threads are listed
    again until no new one shows up: one may have been started meanwhile by a thread not
    yet pinned.
    """
    check_allowed(cpus)
    pinned: set[str] = set()
    while fresh := set(os.listdir("/proc/self/task")) - pinned:
        for tid in fresh:
            with contextlib.suppress(ProcessLookupError):  # the thread ended meanwhile
                os.sched_setaffinity(int(tid), cpus)
        pinned |= fresh


def spread(replica_number: int, cpus: Sequence[int]) -> int:
    """The CPU replica `replica_number` (1-based) of a local group runs on: round robin
    over `cpus`, so replicas share a CPU only when there are more replicas than CPUs."""
    assert replica_number >= 1 and cpus, "replicas are numbered from 1 and need a CPU"
    return sorted(cpus)[(replica_number - 1) % len(cpus)]
