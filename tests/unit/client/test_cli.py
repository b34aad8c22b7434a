"""The `triumvir` command line, run in-process against a fake member."""

from __future__ import annotations

import base64
import io
import json
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

import triumvir.consensus
from tests.unit.client.fakes import FakeServer, WatchScript, created, events_response, put_event
from triumvir.consensus.config import ReplicaConfig
from triumvir.v1 import watch_pb2
from triumvir_client import launcher
from triumvir_client.cli import main


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer() as fake:
        yield fake


def run(capsys: pytest.CaptureFixture[str], server: FakeServer, *argv: str) -> tuple[int, str, str]:
    code = main(["--endpoints", server.address, "--timeout", "2", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    for command in (
        "serve consensus",
        "up [--engine raft|paxos]",
        "kv put KEY VALUE",
        "kv get KEY",
        "kv del KEY",
        "kv txn",
        "kv watch KEY",
        "lease grant TTL",
        "cluster status",
        "transfer ID",
        "snapshot save FILE",
        "snapshot restore FILE --data-dir DIR --peers",
    ):
        assert command in out


def test_txn_help_documents_the_spec_format(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["kv", "txn", "--help"])
    out = capsys.readouterr().out
    assert "version owner = 0" in out
    assert "put KEY VALUE [--lease ID]" in out


def test_put_then_get_prints_keys_and_values(
    capsys: pytest.CaptureFixture[str], server: FakeServer
) -> None:
    assert run(capsys, server, "kv", "put", "greeting", "héllo") == (0, "OK\n", "")
    run(capsys, server, "kv", "put", "green", "yes")
    assert run(capsys, server, "kv", "get", "greeting") == (0, "greeting\nhéllo\n", "")
    code, out, _ = run(capsys, server, "kv", "get", "gree", "--prefix", "--keys-only")
    assert (code, out) == (0, "green\ngreeting\n")
    code, out, _ = run(capsys, server, "kv", "get", "gree", "--prefix", "--count-only")
    assert out == "2\n"
    ranged = server.calls_named("Range")[-1]
    assert (ranged.key, ranged.range_end, ranged.count_only) == (b"gree", b"gref", True)


def test_client_options_may_follow_the_command(
    capsys: pytest.CaptureFixture[str], server: FakeServer
) -> None:
    code = main(["kv", "put", "k", "v", "--endpoints", server.address, "--output", "json"])
    out = capsys.readouterr().out
    assert code == 0
    assert json.loads(out)["header"]["revision"] == "1"


def test_endpoints_come_from_the_environment(
    capsys: pytest.CaptureFixture[str], server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRIUMVIR_ENDPOINTS", server.address)
    assert main(["kv", "del", "nothing"]) == 0
    assert capsys.readouterr().out == "0\n"


def test_json_output_uses_the_protobuf_mapping(
    capsys: pytest.CaptureFixture[str], server: FakeServer
) -> None:
    run(capsys, server, "kv", "put", "k", "v1")
    code, out, _ = run(capsys, server, "--output", "json", "kv", "get", "k")
    document = json.loads(out)
    assert code == 0
    assert base64.b64decode(document["kvs"][0]["value"]) == b"v1"
    assert document["count"] == "1"


def test_errors_print_the_code_and_message_and_exit_1(
    capsys: pytest.CaptureFixture[str], server: FakeServer
) -> None:
    assert run(capsys, server, "lease", "revoke", "99") == (
        1,
        "",
        "error: NOT_FOUND: lease 99 not found\n",
    )
    code, _, err = run(capsys, server, "kv", "get", "k", "--endpoints", "nonsense")
    assert code == 1
    assert err.startswith("error: INVALID_ARGUMENT: bad endpoint 'nonsense'")


def test_txn_reads_its_spec_from_stdin_or_a_file(
    capsys: pytest.CaptureFixture[str],
    server: FakeServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    spec = "version owner = 0\n\nput owner alice\n\nget owner\n"
    monkeypatch.setattr(sys, "stdin", io.StringIO(spec))
    assert run(capsys, server, "kv", "txn") == (0, "SUCCESS\n\nOK\n", "")
    path = tmp_path / "txn.spec"
    path.write_text(spec.replace("alice", "bob"))
    assert run(capsys, server, "kv", "txn", "--file", str(path)) == (
        0,
        "FAILURE\n\nowner\nalice\n",
        "",
    )
    path.write_text("version owner = zero\n")
    code, _, err = run(capsys, server, "kv", "txn", "--file", str(path))
    assert code == 1
    assert err == "error: INVALID_ARGUMENT: line 1: 'zero' is not an integer\n"


def test_watch_prints_events_as_they_arrive(
    capsys: pytest.CaptureFixture[str],
) -> None:
    canceled = watch_pb2.WatchResponse(watch_id=1, canceled=True, cancel_reason="shutting down")
    script = WatchScript(
        streams=[[created(1), events_response(put_event(b"k", 2), put_event(b"k/x", 2)), canceled]]
    )
    with FakeServer(watch=script) as server:
        code, out, err = run(capsys, server, "kv", "watch", "k", "--prefix", "--rev", "2")
    assert out == "PUT\nk\nv2\nPUT\nk/x\nv2\n"
    assert (code, err) == (1, "error: CANCELLED: the server canceled the watch: shutting down\n")
    assert script.creates[0].start_revision == 2


def test_lease_commands(capsys: pytest.CaptureFixture[str], server: FakeServer) -> None:
    assert run(capsys, server, "lease", "grant", "30")[1] == "lease 100 granted with TTL(30s)\n"
    run(capsys, server, "kv", "put", "held", "x", "--lease", "100")
    assert run(capsys, server, "lease", "ttl", "100", "--keys")[1] == (
        "lease 100 granted with TTL(30s), remaining(29s), attached keys([held])\n"
    )
    assert run(capsys, server, "lease", "list")[1] == "found 1 leases\n100\n"
    assert run(capsys, server, "lease", "revoke", "100")[1] == "lease 100 revoked\n"
    assert run(capsys, server, "lease", "ttl", "100")[1] == (
        "lease 100 does not exist (expired or revoked)\n"
    )


def test_cluster_commands(capsys: pytest.CaptureFixture[str], server: FakeServer) -> None:
    code, out, _ = run(capsys, server, "cluster", "status")
    header, row = out.splitlines()
    assert code == 0
    assert header.split() == [
        "ENDPOINT",
        "ID",
        "ENGINE",
        "ROLE",
        "LEADER",
        "TERM",
        "COMMIT",
        "APPLIED",
        "DB_BYTES",
        "ERRORS",
    ]
    assert row.split() == [server.address, "1", "raft", "leader", "1", "3", "42", "41", "4096", "-"]
    code, out, _ = run(capsys, server, "cluster", "add", "http://127.0.0.1:7004", "--name", "four")
    assert out.splitlines()[0] == "member 2 added as a learner; promote it once caught up"
    assert out.splitlines()[-1].split() == ["2", "four", "http://127.0.0.1:7004", "-", "true"]
    code, out, _ = run(capsys, server, "cluster", "add", "127.0.0.1:7005", "--id", "9")
    assert code == 0
    assert out.splitlines()[0] == "member 9 added as a learner; promote it once caught up"


def test_snapshot_save_writes_the_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with FakeServer(snapshot_chunks=[b"abc", b"def"]) as server:
        target = tmp_path / "s.snap"
        code, out, _ = run(capsys, server, "snapshot", "save", str(target))
    assert code == 0
    assert target.read_bytes() == b"abcdef"
    assert out.startswith(f"snapshot saved to {target}: 6 bytes")


def test_serve_consensus_builds_the_replica_config(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    started: list[ReplicaConfig] = []
    fake_server = types.ModuleType("triumvir.consensus.server")
    fake_server.serve = started.append  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "triumvir.consensus.server", fake_server)
    monkeypatch.setattr(triumvir.consensus, "server", fake_server, raising=False)
    argv = ["serve", "consensus", "--id", "2", "--listen", "127.0.0.1:7002"]
    argv += ["--peers", "1=127.0.0.1:7001,2=127.0.0.1:7002", "--data-dir", str(tmp_path)]
    assert main([*argv, "--engine", "raft"]) == 0
    assert len(started) == 1
    config = started[0]
    assert (config.node_id, config.engine, config.data_dir) == (2, "raft", str(tmp_path))
    assert dict(config.peers) == {1: "127.0.0.1:7001", 2: "127.0.0.1:7002"}

    assert main(["serve", "consensus", "--id", "3", "--listen", "h:1", "--data-dir", "d"]) == 1
    assert "error: INVALID_ARGUMENT: --peers must include this replica" in capsys.readouterr().err
    assert len(started) == 1


def test_up_runs_one_child_per_replica_with_its_own_port_and_data_dir() -> None:
    specs = launcher.replica_specs(engine="raft", data_dir=".data", base_port=7001, replicas=3)
    assert [spec.address for spec in specs] == [
        "127.0.0.1:7001",
        "127.0.0.1:7002",
        "127.0.0.1:7003",
    ]
    argv = specs[2].argv
    assert argv[:5] == (sys.executable, "-m", "triumvir_client.cli", "serve", "consensus")
    flags = dict(zip(argv[5::2], argv[6::2], strict=True))
    assert flags == {
        "--id": "3",
        "--listen": "127.0.0.1:7003",
        "--peers": "1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003",
        "--data-dir": ".data/3",
        "--engine": "raft",
        "--metrics-listen": "127.0.0.1:7103",
    }
    assert "Zm9v" in launcher.grpcurl_example(specs[0].address)


def test_up_gives_each_replica_a_cpu_in_turn_when_given_cpus() -> None:
    specs = launcher.replica_specs(
        engine="raft", data_dir=".data", base_port=7001, replicas=3, cpus=(0, 1)
    )
    cpus = [dict(zip(s.argv[5::2], s.argv[6::2], strict=True))["--cpus"] for s in specs]
    assert cpus == ["0", "1", "0"]


def test_up_refuses_a_bad_layout_before_starting_anything(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["up", "--replicas", "0"]) == 1
    assert capsys.readouterr().err.startswith("error: INVALID_ARGUMENT: --replicas must be")
