"""Process plumbing shared by the cluster launchers: ports, memory peaks, shutdown."""

from __future__ import annotations

import abc
import contextlib
import os
import signal
import socket
import subprocess
from pathlib import Path
from types import TracebackType
from typing import Self

KIB_PER_MIB = 1024
# A replica that ignores SIGTERM this long is killed, so a benchmark never hangs on exit.
STOP_GRACE_S = 10.0
KILL_WAIT_S = 5.0
LOG_TAIL_LINES_MAX = 20
LOG_TAIL_BYTES_MAX = 16 * 1024


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """Ports the kernel says are free now; all are held open together so none repeats."""
    assert count > 0
    with contextlib.ExitStack() as stack:
        ports: list[int] = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((host, 0))
            ports.append(sock.getsockname()[1])
        return ports


def parse_vmhwm_kib(status_text: str) -> int:
    """The peak resident set (VmHWM, in KiB) from the text of /proc/<pid>/status."""
    for line in status_text.splitlines():
        if line.startswith("VmHWM:"):
            fields = line.split()
            if len(fields) < 2 or not fields[1].isdigit():
                raise ValueError(f"malformed VmHWM line: {line!r}")
            unit = fields[2] if len(fields) > 2 else "kB"
            if unit != "kB":
                raise ValueError(f"unexpected VmHWM unit {unit!r}")
            return int(fields[1])
    raise ValueError("no VmHWM line in process status")


def peak_rss_mib(pid: int) -> float:
    """Peak resident memory of a live process, in MiB."""
    text = Path(f"/proc/{pid}/status").read_text(encoding="ascii", errors="replace")
    return parse_vmhwm_kib(text) / KIB_PER_MIB


def stop_process(proc: subprocess.Popen[bytes], grace_s: float = STOP_GRACE_S) -> None:
    """SIGTERM first so the server shuts down cleanly; SIGKILL if it will not."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait(timeout=KILL_WAIT_S)


def log_tail(path: Path, lines_max: int = LOG_TAIL_LINES_MAX) -> str:
    """The last lines of a child's log, to explain why it died."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - LOG_TAIL_BYTES_MAX))
            data = f.read()
    except OSError:
        return ""
    return "\n".join(data.decode("utf-8", errors="replace").splitlines()[-lines_max:])


def strip_scheme(url: str) -> str:
    """`http://127.0.0.1:2379` -> `127.0.0.1:2379`, the form gRPC channels take."""
    _, sep, rest = url.partition("://")
    return (rest if sep else url).rstrip("/")


class ClusterProcesses(abc.ABC):
    """What every launched cluster shares: its member processes, their memory peaks, and
    use as a context manager around the subclass's `start` and `stop`."""

    def __init__(self) -> None:
        self._procs: list[subprocess.Popen[bytes]] = []

    @property
    def pids(self) -> tuple[int, ...]:
        return tuple(p.pid for p in self._procs)

    def peak_mib_per_replica(self) -> tuple[float, ...]:
        return tuple(peak_rss_mib(p.pid) for p in self._procs)

    @abc.abstractmethod
    def start(self) -> None: ...

    @abc.abstractmethod
    def stop(self) -> None: ...

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
