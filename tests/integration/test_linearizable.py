"""Concurrent clients against three real replicas, the leader killed and restarted mid-run:
the recorded history must be linearizable."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

from tests.checkers.history import History
from tests.checkers.linearizability import check_linearizable
from tests.integration.cluster import LocalCluster
from triumvir_client import builders
from triumvir_client.client import Client
from triumvir_client.errors import ClientError, FailedPrecondition, InvalidArgument, NotFound

CLIENTS = 5
KEYS = ("x", "y", "z")
OPS_PER_CLIENT = 120


def _run_client(
    process: int, endpoints: list[str], history: History, seed: int, stop: threading.Event
) -> None:
    rng = random.Random(seed)
    with Client(endpoints, timeout_s=3.0) as client:
        for n in range(OPS_PER_CLIENT):
            if stop.is_set():
                return
            key = rng.choice(KEYS)
            roll = rng.random()
            if roll < 0.4:
                value = f"{process}-{n}"
                op = history.invoke(process, "put", key, value, time.monotonic_ns())
                try:
                    client.put(key, value)
                except (InvalidArgument, FailedPrecondition, NotFound):
                    history.fail(op, time.monotonic_ns())
                except ClientError:
                    history.info(op, time.monotonic_ns())  # a timeout is an unknown outcome
                else:
                    history.ok(op, None, time.monotonic_ns())
            elif roll < 0.75:
                op = history.invoke(process, "get", key, None, time.monotonic_ns())
                try:
                    reply = client.get(key)
                except ClientError:
                    history.fail(op, time.monotonic_ns())  # a read changes nothing
                else:
                    value = reply.kvs[0].value.decode() if reply.kvs else None
                    history.ok(op, value, time.monotonic_ns())
            else:
                expected, new = f"{rng.randrange(CLIENTS)}-{rng.randrange(n + 1)}", f"{process}-{n}"
                op = history.invoke(process, "cas", key, (expected, new), time.monotonic_ns())
                try:
                    reply = client.txn(
                        [builders.compare_value(key, "==", expected)],
                        [builders.op_put(key, new)],
                    )
                except ClientError:
                    history.info(op, time.monotonic_ns())
                else:
                    history.ok(op, reply.succeeded, time.monotonic_ns())


def test_history_with_leader_crash_is_linearizable(tmp_path: Path, engine: str) -> None:
    cluster = LocalCluster(tmp_path, engine=engine)
    cluster.start()
    history = History()
    stop = threading.Event()
    try:
        cluster.wait_leader()
        endpoints = cluster.endpoints()
        threads = [
            threading.Thread(
                target=_run_client, args=(p, endpoints, history, 1000 + p, stop), daemon=True
            )
            for p in range(CLIENTS)
        ]
        for thread in threads:
            thread.start()
        time.sleep(1.5)
        leader = cluster.wait_leader()
        cluster.kill(leader)
        time.sleep(1.5)
        cluster.start(leader)
        for thread in threads:
            thread.join(120)
        assert not any(thread.is_alive() for thread in threads), "a client never finished"
    finally:
        stop.set()
        cluster.stop()
    completed = [e for e in history.events if e.kind == "ok"]
    assert len(completed) > CLIENTS * OPS_PER_CLIENT // 3, "too few operations completed"
    result = check_linearizable(history)
    assert result.ok, f"not linearizable on {result.key}: {result.reason}"
