"""A seeded random log of every command kind, for determinism and snapshot tests."""

from __future__ import annotations

import random

from triumvir.v1.command_pb2 import Command, LeaseExpire, LeaseRefresh
from triumvir.v1.common_pb2 import RequestTag
from triumvir.v1.kv_pb2 import (
    CompactionRequest,
    Compare,
    DeleteRangeRequest,
    PutRequest,
    RangeRequest,
    RequestOp,
    TxnRequest,
)
from triumvir.v1.lease_pb2 import LeaseGrantRequest, LeaseKeepAliveRequest, LeaseRevokeRequest

KEYS = [b"a", b"a/1", b"a/2", b"b", b"b/1", b"c"]
LEASE_IDS = [11, 12, 13]
CLIENTS = [101, 102]


def random_log(seed: int, length: int) -> list[bytes]:
    rng = random.Random(seed)
    time_ms = 1_000_000
    sequences = dict.fromkeys(CLIENTS, 0)
    entries: list[bytes] = []
    for position in range(length):
        time_ms += rng.choice([0, 10, 500, 4_000])
        command = _random_command(rng, position)
        command.leader_time_ms = time_ms
        if command.WhichOneof("op") in ("put", "txn", "delete_range") and rng.random() < 0.3:
            client = rng.choice(CLIENTS)
            if rng.random() < 0.7:  # otherwise a retry of the last sequence
                sequences[client] += 1
            command.tag.CopyFrom(RequestTag(client_id=client, sequence=max(1, sequences[client])))
        entries.append(command.SerializeToString())
    return entries


def _random_command(rng: random.Random, position: int) -> Command:
    roll = rng.random()
    key = rng.choice(KEYS)
    if roll < 0.35:
        lease = rng.choice([0, 0, *LEASE_IDS])
        return Command(put=PutRequest(key=key, value=b"%d" % rng.randrange(100), lease=lease))
    if roll < 0.45:
        end = rng.choice([b"", b"\0", key + b"\xff"])
        return Command(delete_range=DeleteRangeRequest(key=key, range_end=end, prev_kv=True))
    if roll < 0.65:
        compare = Compare(key=key, target=Compare.VERSION, result=Compare.GREATER, version=1)
        other = rng.choice(KEYS)
        ops = [
            RequestOp(request_put=PutRequest(key=key, value=b"t")),
            RequestOp(request_range=RangeRequest(key=other, range_end=b"\0", limit=2)),
        ]
        if other != key:
            ops.append(RequestOp(request_delete_range=DeleteRangeRequest(key=other)))
        return Command(txn=TxnRequest(compare=[compare], success=ops, failure=ops[:1]))
    if roll < 0.72:
        return Command(
            lease_grant=LeaseGrantRequest(ttl=rng.choice([1, 5]), id=rng.choice(LEASE_IDS))
        )
    if roll < 0.77:
        return Command(lease_revoke=LeaseRevokeRequest(id=rng.choice(LEASE_IDS)))
    if roll < 0.83:
        return Command(lease_keep_alive=LeaseKeepAliveRequest(id=rng.choice(LEASE_IDS)))
    if roll < 0.85:
        return Command(lease_refresh=LeaseRefresh())
    if roll < 0.93:
        return Command(lease_expire=LeaseExpire(ids=sorted(rng.sample(LEASE_IDS, 2))))
    return Command(compaction=CompactionRequest(revision=rng.randrange(1, position + 2)))
