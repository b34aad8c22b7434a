"""The Raft core is pure: no I/O, no clock, no global randomness (checked statically)."""

from __future__ import annotations

from pathlib import Path

import pytest

import triumvir.consensus.raft as raft_package
from tests.unit.raft.purity import find_impurities

RAFT_DIR = Path(raft_package.__file__).parent


def test_raft_core_modules_are_pure() -> None:
    assert {"core.py", "log.py", "types.py"} <= {p.name for p in RAFT_DIR.glob("*.py")}
    assert find_impurities(RAFT_DIR) == []


@pytest.mark.parametrize(
    ("source", "complaint"),
    [
        ("import time\n", "imports time"),
        ("import os.path\n", "imports os.path"),
        ("from asyncio import sleep\n", "imports from asyncio"),
        ("import grpc.aio as g\n", "imports grpc.aio"),
        ("from socket import socket\n", "imports from socket"),
        ("import random\nx = random.random()\n", "calls random.random()"),
        ("import random as r\nx = r.choice([1])\n", "calls random.choice()"),
        ("import random\nrng = random.Random()\n", "calls random.Random()"),
        ("from random import randint\n", "imports random.randint"),
        ("from random import Random\nrng = Random()\n", "calls Random() from random"),
    ],
)
def test_purity_check_catches_impure_code(tmp_path: Path, source: str, complaint: str) -> None:
    (tmp_path / "bad.py").write_text(source)
    problems = find_impurities(tmp_path)
    assert any(complaint in problem for problem in problems), problems


def test_purity_check_allows_random_as_a_type(tmp_path: Path) -> None:
    (tmp_path / "ok.py").write_text(
        "import random\nfrom random import Random\n"
        "def f(rng: random.Random, other: Random) -> int:\n    return rng.randrange(3)\n"
    )
    assert find_impurities(tmp_path) == []
