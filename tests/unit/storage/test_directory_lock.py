from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from triumvir.consensus.storage.fsutil import LOCK_FILE, DataDirInUse, DirectoryLock

# Takes the lock in a child process, says so, then waits to be killed.
_HOLD = """
import sys, time
from pathlib import Path
from triumvir.consensus.storage.fsutil import DirectoryLock
lock = DirectoryLock(Path(sys.argv[1]))
print("held", flush=True)
time.sleep(60)
"""


def test_second_holder_is_refused_with_the_first_ones_pid(tmp_path: Path) -> None:
    first = DirectoryLock(tmp_path / "data")
    with pytest.raises(DataDirInUse) as caught:
        DirectoryLock(tmp_path / "data")
    assert f"in use by another process (pid {os.getpid()})" in str(caught.value)
    assert "--data-dir" in str(caught.value)
    first.release()
    DirectoryLock(tmp_path / "data").release()  # free again once released


def test_lock_of_a_process_killed_by_sigkill_is_not_stale(tmp_path: Path) -> None:
    data = tmp_path / "data"
    child = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(data)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "held"
        with pytest.raises(DataDirInUse, match=f"pid {child.pid}"):
            DirectoryLock(data)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    assert (data / LOCK_FILE).exists()  # the file stays; only the kernel's lock is gone
    DirectoryLock(data).release()
