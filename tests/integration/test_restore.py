"""A backup restored into a new group of real processes: same data, same hashes, new writes,
and leases that get their whole TTL again."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.cluster import LocalCluster
from tests.integration.test_failover import assert_hashes_equal, wait_converged
from triumvir.consensus.kv.machine import KVStateMachine
from triumvir_client.client import Client


def _restore(backup: Path, data_dir: Path, peers: str) -> subprocess.CompletedProcess[str]:
    """`triumvir snapshot restore`, run as a person would."""
    command = [sys.executable, "-m", "triumvir_client.cli", "snapshot", "restore", str(backup)]
    return subprocess.run(
        [*command, "--data-dir", str(data_dir), "--peers", peers],
        capture_output=True,
        text=True,
        timeout=60,
    )


def _contents(client: Client) -> dict[bytes, bytes]:
    return {kv.key: kv.value for kv in client.get(b"k", prefix=True).kvs}


@pytest.mark.parametrize("engine", ["raft", "paxos"])
def test_a_group_restored_from_a_backup_has_its_data_and_takes_new_writes(
    tmp_path: Path, engine: str
) -> None:
    backup = tmp_path / "backup.snap"
    ttl = 3
    old = LocalCluster(tmp_path / "old", engine=engine)
    old.start()
    try:
        old.wait_leader()
        with Client(old.endpoints(), timeout_s=10.0) as client:
            for i in range(40):
                client.put(f"k{i:02}", f"v{i}")
            client.delete("k07")
            lease = client.lease_grant(ttl).id
            client.put("leased", "v", lease=lease)
            granted = time.monotonic()
            saved = client.snapshot_save(str(backup))
            expected = _contents(client)
    finally:
        old.stop()
    assert len(expected) == 39
    time.sleep(max(0.0, granted + ttl + 0.5 - time.monotonic()))  # the lease's time runs out

    new = LocalCluster(tmp_path / "new", engine=engine)  # new ports, new directories
    for node in new.nodes.values():
        restore = _restore(backup, node.data_dir, new.peers_flag())
        assert restore.returncode == 0, restore.stderr
        assert f"revision {saved.revision}" in restore.stdout
    new.start()
    try:
        new.wait_leader()
        with Client(new.endpoints(), timeout_s=10.0) as client:
            assert _contents(client) == expected
            reply = client.put("k99", "after")
            assert reply.header.revision == saved.revision + 1
            # The first leader gave the lease its whole TTL again, so it outlives several of
            # the leader's expiry checks; with no keep-alive it then runs out, key and all.
            time.sleep(0.5)
            assert client.get("leased").kvs, "a restored lease expired before its holder could act"
            started = time.monotonic()
            while client.get("leased").kvs:
                assert time.monotonic() - started < ttl + 3, "the restored lease never expired"
                time.sleep(0.1)
        members = sorted(new.nodes)
        wait_converged(new, members)
        assert_hashes_equal(new, members)
    finally:
        new.stop()


def test_restore_refuses_a_used_directory_and_a_damaged_backup(tmp_path: Path) -> None:
    def restore(backup: Path, data_dir: Path) -> subprocess.CompletedProcess[str]:
        return _restore(backup, data_dir, "1=127.0.0.1:1")

    damaged = tmp_path / "damaged.snap"
    damaged.write_bytes(b"TVKV" + bytes(40))
    refused = restore(damaged, tmp_path / "fresh")
    assert refused.returncode == 1
    assert (
        "INVALID_ARGUMENT" in refused.stderr and "not a readable triumvir backup" in refused.stderr
    )
    assert not (tmp_path / "fresh").exists()

    sound = tmp_path / "sound.snap"
    sound.write_bytes(KVStateMachine().snapshot())
    used = tmp_path / "used"
    used.mkdir()
    (used / "keep.txt").write_text("precious")
    refused = restore(sound, used)
    assert refused.returncode == 1
    assert "is not empty" in refused.stderr
    assert [p.name for p in used.iterdir()] == ["keep.txt"]
    assert restore(sound, tmp_path / "fresh").returncode == 0
