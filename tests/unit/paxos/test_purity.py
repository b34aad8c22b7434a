"""The Paxos core is pure: no I/O, no clock, no global randomness (checked statically)."""

from __future__ import annotations

from pathlib import Path

import triumvir.consensus.paxos as paxos_package
from tests.unit.raft.purity import find_impurities

PAXOS_DIR = Path(paxos_package.__file__).parent


def test_paxos_core_modules_are_pure() -> None:
    assert {"core.py", "slots.py", "types.py", "phase1.py"} <= {
        p.name for p in PAXOS_DIR.glob("*.py")
    }
    assert find_impurities(PAXOS_DIR) == []


def test_paxos_core_imports_no_protobuf() -> None:
    sources = "".join(p.read_text() for p in PAXOS_DIR.glob("*.py"))
    assert "triumvir.v1" not in sources and "google.protobuf" not in sources
