"""The public API on a real group: bad input gets a precise status and loses nothing, retried
writes apply once, watches survive leader changes, leases expire across leader changes."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.cluster import LocalCluster, Node, free_ports
from triumvir.consensus.kv import KVStateMachine
from triumvir.v1 import (
    cluster_pb2,
    cluster_pb2_grpc,
    common_pb2,
    kv_pb2,
    kv_pb2_grpc,
    lease_pb2,
    lease_pb2_grpc,
    maintenance_pb2,
    maintenance_pb2_grpc,
    watch_pb2,
    watch_pb2_grpc,
)
from triumvir_client.client import Client

KEY_LIMIT = 4 * 1024
VALUE_LIMIT = 3 * 512 * 1024


@pytest.fixture(scope="module")
def group(tmp_path_factory: pytest.TempPathFactory, engine: str):
    cluster = LocalCluster(tmp_path_factory.mktemp("api"), engine=engine)
    cluster.start()
    try:
        cluster.wait_leader()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def channel(group: LocalCluster):
    leader = group.wait_leader()
    with grpc.insecure_channel(
        group.nodes[leader].address,
        options=(("grpc.max_send_message_length", 8 * 1024 * 1024),),
    ) as ch:
        yield ch


BAD_INPUTS = [
    ("empty key", "KV", "Put", kv_pb2.PutRequest(value=b"v"), "INVALID_ARGUMENT", "key is empty"),
    (
        "range_end before key",
        "KV",
        "Range",
        kv_pb2.RangeRequest(key=b"b", range_end=b"a"),
        "INVALID_ARGUMENT",
        "range_end",
    ),
    (
        "oversize key",
        "KV",
        "Put",
        kv_pb2.PutRequest(key=b"k" * (KEY_LIMIT + 1), value=b"v"),
        "INVALID_ARGUMENT",
        "limit is 4096",
    ),
    (
        "oversize value",
        "KV",
        "Put",
        kv_pb2.PutRequest(key=b"big", value=b"v" * (VALUE_LIMIT + 1)),
        "INVALID_ARGUMENT",
        "value-bytes-max",
    ),
    (
        "oversize request",
        "KV",
        "Put",
        kv_pb2.PutRequest(key=b"huge", value=b"v" * (3 * 1024 * 1024)),
        "RESOURCE_EXHAUSTED",
        "",
    ),
    ("zero ttl", "Lease", "Grant", lease_pb2.LeaseGrantRequest(ttl=0), "INVALID_ARGUMENT", "ttl"),
    (
        "negative ttl",
        "Lease",
        "Grant",
        lease_pb2.LeaseGrantRequest(ttl=-5),
        "INVALID_ARGUMENT",
        "ttl",
    ),
    (
        "unknown lease",
        "KV",
        "Put",
        kv_pb2.PutRequest(key=b"leased", value=b"v", lease=987654321),
        "NOT_FOUND",
        "987654321",
    ),
    (
        "future revision",
        "KV",
        "Range",
        kv_pb2.RangeRequest(key=b"a", revision=10**9),
        "OUT_OF_RANGE",
        "future",
    ),
    (
        "malformed txn",
        "KV",
        "Txn",
        kv_pb2.TxnRequest(compare=[kv_pb2.Compare(key=b"a")]),
        "INVALID_ARGUMENT",
        "compare",
    ),
    (
        "unknown member",
        "Cluster",
        "MemberRemove",
        cluster_pb2.MemberRemoveRequest(id=999),
        "NOT_FOUND",
        "999",
    ),
]

_STUBS = {
    "KV": kv_pb2_grpc.KVStub,
    "Lease": lease_pb2_grpc.LeaseStub,
    "Cluster": cluster_pb2_grpc.ClusterStub,
}


@pytest.mark.parametrize(
    ("service", "method", "request_message", "code", "fragment"),
    [case[1:] for case in BAD_INPUTS],
    ids=[case[0] for case in BAD_INPUTS],
)
def test_bad_input_gets_precise_status_and_server_keeps_serving(
    channel, service, method, request_message, code, fragment
) -> None:
    stub = _STUBS[service](channel)
    with pytest.raises(grpc.RpcError) as caught:
        getattr(stub, method)(request_message, timeout=10)
    assert caught.value.code().name == code, caught.value.details()
    assert fragment.lower() in (caught.value.details() or "").lower()
    kv = kv_pb2_grpc.KVStub(channel)
    kv.Put(kv_pb2.PutRequest(key=b"after-bad-input", value=method.encode()), timeout=10)
    got = kv.Range(kv_pb2.RangeRequest(key=b"after-bad-input"), timeout=10)
    assert got.kvs[0].value == method.encode()


def test_compacted_revision_is_out_of_range(channel) -> None:
    kv = kv_pb2_grpc.KVStub(channel)
    first = kv.Put(kv_pb2.PutRequest(key=b"compact-me", value=b"1"), timeout=10)
    kv.Put(kv_pb2.PutRequest(key=b"compact-me", value=b"2"), timeout=10)
    kv.Compact(kv_pb2.CompactionRequest(revision=first.header.revision + 1), timeout=10)
    with pytest.raises(grpc.RpcError) as caught:
        kv.Range(kv_pb2.RangeRequest(key=b"compact-me", revision=first.header.revision), timeout=10)
    assert caught.value.code() == grpc.StatusCode.OUT_OF_RANGE
    assert "compacted" in caught.value.details()


@contextmanager
def lone_replica(tmp_path: Path, engine: str) -> Iterator[cluster_pb2_grpc.ClusterStub]:
    """The Cluster service of a one-replica group, once it leads itself."""
    single = LocalCluster(tmp_path, size=1, engine=engine)
    single.start()
    try:
        single.wait_leader()
        with grpc.insecure_channel(single.endpoints()[0]) as ch:
            yield cluster_pb2_grpc.ClusterStub(ch)
    finally:
        single.stop()


def test_group_runs_on_uvloop_by_default(group: LocalCluster) -> None:
    for node_id in group.nodes:
        assert '"event_loop": "uvloop"' in group.nodes[node_id].log_path.read_text()


def test_replica_serves_on_the_standard_asyncio_loop_when_asked(
    tmp_path: Path, engine: str
) -> None:
    single = LocalCluster(tmp_path, size=1, engine=engine, **{"event-loop": "asyncio"})
    single.start()
    try:
        single.wait_leader()
        with grpc.insecure_channel(single.endpoints()[0]) as ch:
            kv = kv_pb2_grpc.KVStub(ch)
            kv.Put(kv_pb2.PutRequest(key=b"loop", value=b"asyncio"), timeout=10)
            got = kv.Range(kv_pb2.RangeRequest(key=b"loop"), timeout=10)
        assert [record.value for record in got.kvs] == [b"asyncio"]
        assert '"event_loop": "asyncio"' in single.nodes[1].log_path.read_text()
    finally:
        single.stop()


def test_a_replica_told_its_cpus_keeps_every_thread_there(tmp_path: Path) -> None:
    cpu = max(os.sched_getaffinity(0))
    single = LocalCluster(tmp_path, size=1, cpus=cpu)
    single.start()
    try:
        single.wait_leader()
        with grpc.insecure_channel(single.endpoints()[0]) as ch:
            kv_pb2_grpc.KVStub(ch).Put(kv_pb2.PutRequest(key=b"cpu", value=b"pinned"), timeout=10)
        process = single.nodes[1].process
        assert process is not None
        threads = os.listdir(f"/proc/{process.pid}/task")
        # The loop, gRPC's threads and the WAL's: all started, all kept on the one CPU.
        assert len(threads) > 2
        assert {frozenset(os.sched_getaffinity(int(tid))) for tid in threads} == {frozenset({cpu})}
        assert '"event": "threads kept on CPUs"' in single.nodes[1].log_path.read_text()
    finally:
        single.stop()


def _scrape(address: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_a_replica_serves_prometheus_metrics_when_asked(tmp_path: Path, engine: str) -> None:
    metrics_at = f"127.0.0.1:{free_ports(1)[0]}"
    single = LocalCluster(tmp_path, size=1, engine=engine, metrics_listen=metrics_at)
    single.start()
    try:
        single.wait_leader()
        with grpc.insecure_channel(single.endpoints()[0]) as ch:
            kv = kv_pb2_grpc.KVStub(ch)
            for value in (b"1", b"2"):
                kv.Put(kv_pb2.PutRequest(key=b"metered", value=value), timeout=10)
            with pytest.raises(grpc.RpcError):
                kv.Put(kv_pb2.PutRequest(key=b"", value=b"x"), timeout=10)
        put = "/triumvir.v1.KV/Put"
        refused = ("triumvir_requests_total", (("code", "INVALID_ARGUMENT"), ("method", put)))
        # An aborted call's status leaves before the call is counted: wait for the count.
        deadline = time.monotonic() + 5
        while refused not in (got := _scrape(metrics_at)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert got[("triumvir_requests_total", (("code", "OK"), ("method", put)))] == 2
        assert got[refused] == 1
        assert got[("triumvir_request_seconds_count", (("method", put),))] == 3
        # Both writes were proposed here and committed (so was the new leader's lease refresh).
        assert got[("triumvir_commit_seconds_count", ())] >= 2
        assert got[("triumvir_wal_fsync_seconds_count", ())] >= 2
        assert got[("triumvir_leader_changes_total", ())] >= 1
        assert got[("triumvir_is_leader", ())] == got[("triumvir_has_leader", ())] == 1
        assert got[("triumvir_term", ())] >= 1
        assert got[("triumvir_commit_index", ())] >= got[("triumvir_applied_index", ())] >= 2
    finally:
        single.stop()


def test_a_metrics_port_already_taken_stops_the_replica_with_a_clear_error(
    tmp_path: Path,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        metrics_at = f"127.0.0.1:{taken.getsockname()[1]}"
        single = LocalCluster(tmp_path, size=1, metrics_listen=metrics_at)
        node = single.nodes[1]
        node.data_dir.mkdir(parents=True)
        done = subprocess.run(single._command(node), capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert f"error: cannot serve metrics on {metrics_at} (--metrics-listen)" in done.stderr
    assert "Traceback" not in done.stderr
    assert not any(node.data_dir.iterdir())  # it stopped before touching its data


def test_removing_the_last_voter_is_refused(tmp_path: Path, engine: str) -> None:
    with lone_replica(tmp_path, engine) as stub:
        with pytest.raises(grpc.RpcError) as caught:
            stub.MemberRemove(cluster_pb2.MemberRemoveRequest(id=1), timeout=10)
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "last voter" in caught.value.details()
        assert stub.Status(cluster_pb2.StatusRequest(), timeout=10).leader_id == 1


def test_removed_member_id_is_never_handed_out_again(tmp_path: Path, engine: str) -> None:
    with lone_replica(tmp_path, engine) as stub:
        # A learner that never starts: it has no vote, so the group keeps deciding.
        add = cluster_pb2.MemberAddRequest(peer_urls=["127.0.0.1:9"])
        assert stub.MemberAdd(add, timeout=10).member.id == 2
        stub.MemberRemove(cluster_pb2.MemberRemoveRequest(id=2), timeout=10)
        with pytest.raises(grpc.RpcError) as caught:
            again = cluster_pb2.MemberAddRequest(id=2, peer_urls=["127.0.0.1:9"])
            stub.MemberAdd(again, timeout=10)
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "never reused" in caught.value.details()
        assert stub.MemberAdd(add, timeout=10).member.id == 3


def test_second_replica_on_a_data_dir_in_use_refuses_to_start(tmp_path: Path) -> None:
    single = LocalCluster(tmp_path, size=1)
    single.start()
    try:
        single.wait_leader()
        node = single.nodes[1]
        assert node.process is not None
        (port,) = free_ports(1)
        # Same id and data directory as the running replica, its own port.
        twin = Node(1, f"127.0.0.1:{port}", node.data_dir, tmp_path / "twin.log")
        intruder = subprocess.run(single._command(twin), capture_output=True, text=True, timeout=60)
        assert intruder.returncode == 1
        assert f"is in use by another process (pid {node.process.pid})" in intruder.stderr
        assert "Traceback" not in intruder.stderr
        with Client(single.endpoints(), timeout_s=10) as client:
            client.put(b"still-serving", b"yes")
            assert client.get(b"still-serving").kvs[0].value == b"yes"
    finally:
        single.stop()


def test_deadline_already_past_is_deadline_exceeded(channel) -> None:
    kv = kv_pb2_grpc.KVStub(channel)
    with pytest.raises(grpc.RpcError) as caught:
        kv.Put(kv_pb2.PutRequest(key=b"late", value=b"v"), timeout=0.000001)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert kv.Put(kv_pb2.PutRequest(key=b"late", value=b"ok"), timeout=10).header.revision > 0


def test_write_retried_with_same_tag_is_applied_once(channel) -> None:
    kv = kv_pb2_grpc.KVStub(channel)
    tag = common_pb2.RequestTag(client_id=424242, sequence=1)
    request = kv_pb2.PutRequest(key=b"once", value=b"v1", tag=tag)
    first = kv.Put(request, timeout=10)
    # The reply is "lost": the client sends the very same request again.
    second = kv.Put(request, timeout=10)
    assert second.header.revision == first.header.revision
    got = kv.Range(kv_pb2.RangeRequest(key=b"once"), timeout=10)
    assert got.kvs[0].version == 1 and got.kvs[0].mod_revision == first.header.revision
    nxt = kv.Put(
        kv_pb2.PutRequest(
            key=b"once", value=b"v2", tag=common_pb2.RequestTag(client_id=424242, sequence=2)
        ),
        timeout=10,
    )
    assert nxt.header.revision > first.header.revision
    assert kv.Range(kv_pb2.RangeRequest(key=b"once"), timeout=10).kvs[0].version == 2


def test_write_to_follower_is_forwarded_or_names_the_leader(group: LocalCluster) -> None:
    leader = group.wait_leader()
    follower = next(m for m in group.nodes if m != leader)
    with grpc.insecure_channel(group.nodes[follower].address) as ch:
        reply = kv_pb2_grpc.KVStub(ch).Put(kv_pb2.PutRequest(key=b"fwd", value=b"v"), timeout=10)
    assert reply.header.member_id == leader  # answered by the leader, through the follower


def test_hash_is_equal_on_every_replica(group: LocalCluster) -> None:
    with Client(group.endpoints()) as client:
        revision = client.put("hash-probe", "v").header.revision
    digests = set()
    for address in group.endpoints():
        with grpc.insecure_channel(address) as ch:
            stub = maintenance_pb2_grpc.MaintenanceStub(ch)
            deadline = time.monotonic() + 10
            while True:
                try:
                    reply = stub.Hash(maintenance_pb2.HashRequest(revision=revision), timeout=10)
                except grpc.RpcError as err:
                    # A follower learns the commit on the leader's next message or tick; until
                    # then the revision is in its future.
                    if err.code() != grpc.StatusCode.OUT_OF_RANGE or time.monotonic() > deadline:
                        raise
                else:
                    if reply.revision == revision or time.monotonic() > deadline:
                        break
                time.sleep(0.05)
            digests.add((reply.revision, reply.hash))
    assert len(digests) == 1, digests


def test_watch_from_past_revision_across_leader_change(tmp_path: Path, engine: str) -> None:
    cluster = LocalCluster(tmp_path, engine=engine)
    cluster.start()
    try:
        cluster.wait_leader()
        endpoints = cluster.endpoints()
        with Client(endpoints, timeout_s=10.0) as client:
            first = client.put("w/0", "0").header.revision
            for i in range(1, 40):
                client.put(f"w/{i}", str(i))
        received: list[tuple[int, bytes]] = []
        done = threading.Event()

        def watch() -> None:
            with Client(endpoints, timeout_s=10.0) as watcher:
                stream = watcher.watch("w/", prefix=True, start_revision=first)
                with stream:
                    for event in stream:
                        received.append((event.kv.mod_revision, event.kv.key))
                        if len(received) >= 120:
                            break
            done.set()

        thread = threading.Thread(target=watch, daemon=True)
        thread.start()
        leader = cluster.wait_leader()
        cluster.kill(leader)
        with Client(endpoints, timeout_s=10.0) as client:
            for i in range(40, 120):
                client.put(f"w/{i}", str(i))
        cluster.start(leader)
        assert done.wait(60), f"watch received only {len(received)} events"
    finally:
        cluster.stop()
    revisions = [revision for revision, _ in received]
    assert revisions == sorted(revisions), "events out of order"
    assert len(set(revisions)) == len(revisions), "duplicate events"
    assert [key for _, key in received] == [f"w/{i}".encode() for i in range(120)]
    assert revisions == list(range(first, first + 120)), "gap in revisions"


def test_watch_catches_up_on_a_history_longer_than_its_queue(group: LocalCluster) -> None:
    # 101 revisions of 100 keys each: more events than a watcher may hold queued at once.
    with Client(group.endpoints(), timeout_s=10.0) as client:
        revisions = [
            client.txn(
                [],
                [
                    kv_pb2.RequestOp(request_put=kv_pb2.PutRequest(key=b"cu/%03d/%03d" % (t, j)))
                    for j in range(100)
                ],
            ).header.revision
            for t in range(101)
        ]
        received: list[tuple[int, bytes]] = []
        with client.watch("cu/", prefix=True, start_revision=revisions[0]) as stream:
            for event in stream:
                received.append((event.kv.mod_revision, event.kv.key))
                if len(received) == 101 * 100:
                    client.put("cu/live", "1")
                if len(received) > 101 * 100:
                    break
    assert received[:-1] == [
        (revision, b"cu/%03d/%03d" % (t, j))
        for t, revision in enumerate(revisions)
        for j in range(100)
    ]
    live_revision, live_key = received[-1]
    assert live_key == b"cu/live" and live_revision > revisions[-1]


def _open_watch(
    channel: grpc.Channel,
    prefix: bytes,
    start_revision: int,
    stop: threading.Event,
    **create_fields: bool,
):
    """A raw Watch stream on `prefix` whose request side stays open until `stop` is set."""

    def requests() -> Iterator[watch_pb2.WatchRequest]:
        yield watch_pb2.WatchRequest(
            create_request=watch_pb2.WatchCreateRequest(
                key=prefix, range_end=prefix[:-1] + bytes([prefix[-1] + 1]),
                start_revision=start_revision, **create_fields,
            )
        )  # fmt: skip
        stop.wait()

    responses = watch_pb2_grpc.WatchStub(channel).Watch(requests(), timeout=120)
    assert next(responses).created
    return responses


def test_a_watcher_that_stops_reading_is_cancelled_and_resumes_without_gaps(channel) -> None:
    # A watcher that reads nothing while 51,200 events of 1 KiB happen overflows its queue on
    # the server (after the client's own gRPC buffers filled, some 20,000 events here): its
    # watch is cancelled with the documented reason instead of buffering without end, and
    # watching again from the revision after its last event loses nothing.
    kv = kv_pb2_grpc.KVStub(channel)
    first = kv.Put(kv_pb2.PutRequest(key=b"fb-start", value=b"")).header.revision + 1
    stop = threading.Event()
    try:
        stalled = _open_watch(channel, b"fb/", first, stop)
        revisions = []
        for t in range(400):
            puts = [
                kv_pb2.RequestOp(
                    request_put=kv_pb2.PutRequest(key=b"fb/%03d/%03d" % (t, j), value=b"v" * 1024)
                )
                for j in range(128)
            ]
            revisions.append(kv.Txn(kv_pb2.TxnRequest(success=puts), timeout=30).header.revision)
        received: list[tuple[int, bytes]] = []
        cancel = None
        for response in stalled:
            received += [(event.kv.mod_revision, event.kv.key) for event in response.events]
            if response.canceled:
                cancel = response
                break
        assert cancel is not None, f"never cancelled after {len(received)} events"
        assert cancel.cancel_reason.startswith("watcher fell behind"), cancel.cancel_reason
        assert 0 < len(received) < 400 * 128
        resumed = _open_watch(channel, b"fb/", received[-1][0] + 1, stop)
        for response in resumed:
            received += [(event.kv.mod_revision, event.kv.key) for event in response.events]
            if received[-1][0] >= revisions[-1]:
                break
    finally:
        stop.set()
    # A txn's puts share its revision; every event comes once, in order, none missing.
    assert received == [
        (revision, b"fb/%03d/%03d" % (t, j))
        for t, revision in enumerate(revisions)
        for j in range(128)
    ]


def test_a_revision_with_more_events_than_a_response_holds_comes_in_one_response(
    channel,
) -> None:
    # A client that reconnects resumes from the revision after its last event, so a response
    # that ended inside a revision would lose the rest of it.
    kv = kv_pb2_grpc.KVStub(channel)
    for t in range(12):  # 1,536 keys
        puts = [
            kv_pb2.RequestOp(request_put=kv_pb2.PutRequest(key=b"big/%02d/%03d" % (t, j)))
            for j in range(128)
        ]
        kv.Txn(kv_pb2.TxnRequest(success=puts), timeout=30)
    deleted = kv.DeleteRange(kv_pb2.DeleteRangeRequest(key=b"big/", range_end=b"big0"), timeout=30)
    assert deleted.deleted == 12 * 128
    stop = threading.Event()
    try:
        responses = _open_watch(channel, b"big/", deleted.header.revision, stop)
        first = next(responses)
    finally:
        stop.set()
    assert len(first.events) == 12 * 128
    assert {event.kv.mod_revision for event in first.events} == {deleted.header.revision}


def test_watch_responses_stay_within_what_a_default_grpc_client_accepts(group) -> None:
    # 48 revisions of 100 KiB: together over the 4 MiB a gRPC client accepts by default.
    with grpc.insecure_channel(group.nodes[group.wait_leader()].address) as default_channel:
        kv = kv_pb2_grpc.KVStub(default_channel)
        revisions = [
            kv.Put(kv_pb2.PutRequest(key=b"wide/%02d" % i, value=b"w" * 100 * 1024)).header.revision
            for i in range(48)
        ]
        stop = threading.Event()
        received: list[int] = []
        try:
            responses = _open_watch(default_channel, b"wide/", revisions[0], stop)
            for response in responses:
                assert response.ByteSize() <= 2 * 1024 * 1024
                received += [event.kv.mod_revision for event in response.events]
                if received[-1] >= revisions[-1]:
                    break
        finally:
            stop.set()
    assert received == revisions


def test_a_revision_too_large_for_one_response_comes_in_fragments(group) -> None:
    # One DeleteRange of 48 values of 100 KiB: with their previous values its events need
    # more than the 4 MiB a gRPC client accepts by default in one message.
    address = group.nodes[group.wait_leader()].address
    with grpc.insecure_channel(address) as default_channel:
        kv = kv_pb2_grpc.KVStub(default_channel)
        for i in range(48):
            kv.Put(kv_pb2.PutRequest(key=b"huge/%02d" % i, value=b"h" * 100 * 1024))
        deleted = kv.DeleteRange(
            kv_pb2.DeleteRangeRequest(key=b"huge/", range_end=b"huge0")
        ).header.revision
        stop = threading.Event()
        pieces: list[watch_pb2.WatchResponse] = []
        try:
            responses = _open_watch(
                default_channel, b"huge/", deleted, stop, prev_kv=True, fragment=True
            )
            for response in responses:
                pieces.append(response)
                if not response.fragment:
                    break
        finally:
            stop.set()
    assert len(pieces) > 1
    assert all(piece.ByteSize() <= 2 * 1024 * 1024 for piece in pieces)
    events = [event for piece in pieces for event in piece.events]
    delete = common_pb2.Event.DELETE
    assert [(e.type, e.kv.mod_revision) for e in events] == [(delete, deleted)] * 48
    assert all(e.prev_kv.value == b"h" * 100 * 1024 for e in events)
    # The client library asks for fragments and hands out the revision whole.
    with (
        Client(group.endpoints(), timeout_s=10.0) as client,
        client.watch("huge/", prefix=True, start_revision=deleted, prev_kv=True) as watch,
    ):
        keys = [next(watch).kv.key for _ in range(48)]
    assert keys == [b"huge/%02d" % i for i in range(48)]


def test_snapshot_download_restores_to_the_same_state(channel: grpc.Channel) -> None:
    kv_pb2_grpc.KVStub(channel).Put(kv_pb2.PutRequest(key=b"snap/k", value=b"v"), timeout=10)
    stream = maintenance_pb2_grpc.MaintenanceStub(channel).Snapshot(
        maintenance_pb2.SnapshotRequest(), timeout=30
    )
    chunks = list(stream)
    data = b"".join(chunk.blob for chunk in chunks)
    assert chunks[-1].remaining_bytes == 0
    assert chunks[-1].sha256 == hashlib.sha256(data).digest()
    restored = KVStateMachine()
    restored.restore(data)
    (record,) = restored.range(kv_pb2.RangeRequest(key=b"snap/k")).kvs
    assert record.value == b"v"


def test_leased_key_disappears_after_ttl_across_leader_change(tmp_path: Path, engine: str) -> None:
    cluster = LocalCluster(tmp_path, engine=engine)
    cluster.start()
    try:
        cluster.wait_leader()
        with Client(cluster.endpoints(), timeout_s=10.0) as client:
            lease = client.lease_grant(2).id
            client.put("leased-key", "v", lease=lease)
            with client.keep_alive(lease):
                time.sleep(3)  # longer than the TTL: keep-alives hold it
                assert client.get("leased-key").kvs, "key vanished while kept alive"
            stopped = time.monotonic()
            old = cluster.wait_leader()
            client.transfer_leader(next(m for m in cluster.nodes if m != old))
            while client.get("leased-key").kvs:
                assert time.monotonic() - stopped < 8, "leased key outlived its TTL"
                time.sleep(0.1)
            assert time.monotonic() - stopped >= 1.0, "key deleted before its TTL ran out"
            assert cluster.wait_leader() != old
            assert client.lease_time_to_live(lease).ttl <= 0
    finally:
        cluster.stop()


def test_a_new_leader_gives_every_lease_its_whole_ttl_again(tmp_path: Path, engine: str) -> None:
    # Keep-alives cannot reach a group that has no leader; as in etcd, a new leader counts
    # every lease's TTL afresh, so a lease near its end survives a change of leader.
    ttl = 3
    cluster = LocalCluster(tmp_path, engine=engine)
    cluster.start()
    try:
        old = cluster.wait_leader()
        with Client(cluster.endpoints(), timeout_s=10.0) as client:
            lease = client.lease_grant(ttl).id
            client.put("leased-key", "v", lease=lease)
            granted = time.monotonic()
            time.sleep(ttl - 1)  # no keep-alive: one second of its TTL is left
            client.transfer_leader(next(m for m in cluster.nodes if m != old))
            while client.lease_time_to_live(lease).ttl < ttl - 1:
                assert time.monotonic() - granted < ttl + 1, "the new leader did not refresh"
                time.sleep(0.05)
            refreshed = time.monotonic()
            time.sleep(max(0.0, granted + ttl + 0.5 - time.monotonic()))
            assert client.get("leased-key").kvs, "the lease ran out on the old leader's clock"
            while client.get("leased-key").kvs:
                assert time.monotonic() - refreshed < ttl + 3, "leased key outlived its TTL"
                time.sleep(0.1)
            assert time.monotonic() - refreshed >= ttl - 1, "key deleted before its TTL ran out"
        assert cluster.wait_leader() != old
    finally:
        cluster.stop()
