"""Three real replica processes: crash the leader mid-stream, lag a replica past a snapshot,
change membership under load — and every acknowledged write survives."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from tests.integration.cluster import LocalCluster
from triumvir_client.client import Client
from triumvir_client.errors import ClientError

NEW_LEADER_WITHIN_S = 2.0
CATCH_UP_WITHIN_S = 30.0


class Writer(threading.Thread):
    """Puts distinct keys until stopped; remembers exactly which writes were acknowledged."""

    def __init__(self, endpoints: list[str], prefix: str, count_max: int = 100_000) -> None:
        super().__init__(daemon=True)
        self.client = Client(endpoints, timeout_s=5.0)
        self.prefix = prefix
        self.count_max = count_max
        self.acked: dict[bytes, bytes] = {}
        self.unknown: list[bytes] = []
        self.stop_event = threading.Event()

    def run(self) -> None:
        for i in range(self.count_max):
            if self.stop_event.is_set():
                break
            key, value = f"{self.prefix}/{i:06d}".encode(), f"v{i}".encode()
            try:
                self.client.put(key, value)
            except ClientError:
                self.unknown.append(key)  # not acknowledged: may or may not have happened
                continue
            self.acked[key] = value

    def wait_acked(self, count: int, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.acked) < count:
            assert time.monotonic() < deadline, f"only {len(self.acked)} writes acknowledged"
            time.sleep(0.01)

    def finish(self) -> None:
        self.stop_event.set()
        self.join(30)
        self.client.close()


def wait_converged(cluster: LocalCluster, members: list[int]) -> None:
    """Every member has applied the same index, which is the leader's commit index."""
    deadline = time.monotonic() + CATCH_UP_WITHIN_S
    while time.monotonic() < deadline:
        statuses = [cluster.status(member) for member in members]
        if all(statuses):
            applied = {status.applied_index for status in statuses}
            if len(applied) == 1 and max(s.commit_index for s in statuses) in applied:
                return
        time.sleep(0.05)
    details = {m: cluster.status(m) for m in members}
    raise AssertionError(f"members did not converge: {details}")


def assert_hashes_equal(cluster: LocalCluster, members: list[int]) -> None:
    hashes = {}
    for member in members:
        with Client([cluster.nodes[member].address], timeout_s=5.0) as client:
            reply = client.hash()
            hashes[member] = (reply.revision, reply.hash)
    assert len(set(hashes.values())) == 1, f"replicas disagree: {hashes}"


def assert_all_readable(endpoints: list[str], acked: dict[bytes, bytes], prefix: str) -> None:
    with Client(endpoints, timeout_s=10.0) as client:
        reply = client.get(prefix.encode() + b"/", prefix=True)
    stored = {kv.key: kv.value for kv in reply.kvs}
    missing = [key for key in acked if stored.get(key) != acked[key]]
    assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {missing[:5]}"


@pytest.fixture
def cluster(tmp_path: Path, engine: str):
    group = LocalCluster(tmp_path, engine=engine, snapshot_threshold_entries=200)
    group.start()
    try:
        group.wait_leader()
        yield group
    finally:
        group.stop()


def test_kill_leader_mid_stream_loses_no_acknowledged_write(cluster: LocalCluster) -> None:
    writer = Writer(cluster.endpoints(), "failover")
    writer.start()
    try:
        writer.wait_acked(150)
        old_leader = cluster.wait_leader()
        cluster.kill(old_leader)
        killed_at = time.monotonic()
        new_leader = cluster.wait_leader(timeout=10, exclude={old_leader})
        elapsed = time.monotonic() - killed_at
        assert elapsed < NEW_LEADER_WITHIN_S, f"new leader took {elapsed:.2f}s"
        assert new_leader != old_leader
        writer.wait_acked(len(writer.acked) + 150)
        cluster.start(old_leader)  # restarts from its WAL and catches up
        writer.wait_acked(len(writer.acked) + 100)
    finally:
        writer.finish()
    members = list(cluster.nodes)
    wait_converged(cluster, members)
    assert_all_readable(cluster.endpoints(), writer.acked, "failover")
    assert_hashes_equal(cluster, members)


def test_replica_down_past_snapshot_catches_up_by_install_snapshot(cluster: LocalCluster) -> None:
    leader = cluster.wait_leader()
    lagging = next(member for member in cluster.nodes if member != leader)
    cluster.kill(lagging)
    writer = Writer([cluster.nodes[m].address for m in cluster.nodes if m != lagging], "lag")
    writer.start()
    try:
        writer.wait_acked(600)  # three snapshot thresholds: the log it needs is compacted
    finally:
        writer.finish()
    cluster.start(lagging)
    members = list(cluster.nodes)
    wait_converged(cluster, members)
    assert "installed snapshot from leader" in cluster.nodes[lagging].log_path.read_text()
    assert_all_readable(cluster.endpoints(), writer.acked, "lag")
    assert_hashes_equal(cluster, members)


def test_membership_changes_under_load_lose_nothing(cluster: LocalCluster) -> None:
    writer = Writer(cluster.endpoints(), "members")
    writer.start()
    try:
        writer.wait_acked(50)
        newcomer = cluster.add_node(join=True)
        cluster.start(newcomer.node_id)
        with Client(cluster.endpoints(), timeout_s=20.0) as admin:
            added = admin.member_add([newcomer.address])
            assert added.member.id == newcomer.node_id and added.member.is_learner
            deadline = time.monotonic() + CATCH_UP_WITHIN_S
            while True:
                try:
                    admin.member_promote(newcomer.node_id)
                    break
                except ClientError:
                    assert time.monotonic() < deadline, "learner never caught up"
                    time.sleep(0.2)
            writer.wait_acked(len(writer.acked) + 50)
            leader = cluster.wait_leader()
            removed = next(m for m in cluster.initial if m != leader)
            admin.member_remove(removed)
            writer.wait_acked(len(writer.acked) + 50)
            deadline = time.monotonic() + CATCH_UP_WITHIN_S
            while True:
                try:
                    admin.transfer_leader(newcomer.node_id)  # answers once leadership moved
                    break
                except ClientError:
                    assert time.monotonic() < deadline, "leadership never moved to the newcomer"
            assert cluster.wait_leader(exclude={removed}) == newcomer.node_id
        writer.wait_acked(len(writer.acked) + 50)
    finally:
        writer.finish()
    remaining = [m for m in cluster.nodes if m != removed]
    wait_converged(cluster, remaining)
    endpoints = [cluster.nodes[m].address for m in remaining]
    assert_all_readable(endpoints, writer.acked, "members")
    assert_hashes_equal(cluster, remaining)
    with Client(endpoints, timeout_s=5.0) as client:
        members = {m.id: m.is_learner for m in client.member_list().members}
    assert members == {m: False for m in remaining}
