import sys
from pathlib import Path

import pytest

from bench.etcd_cluster import EtcdMember, member_command
from bench.run import (
    DEFAULT_CONCURRENCY,
    RESULTS_PATH,
    SYSTEMS,
    parse_args,
    round_order,
    schedule,
)
from bench.triumvir_cluster import replica_command


def test_etcd_member_runs_on_loopback_with_fsync_on():
    member = EtcdMember("m2", 22379, 22380)
    cmd = member_command(Path("/usr/bin/etcd"), member, "m1=a,m2=b,m3=c", "tok", Path("/d/m2"))
    args = dict(zip(cmd[1::2], cmd[2::2], strict=True))
    assert args["--name"] == "m2"
    assert args["--data-dir"] == "/d/m2"
    assert args["--listen-client-urls"] == "http://127.0.0.1:22379"
    assert args["--listen-peer-urls"] == "http://127.0.0.1:22380"
    assert args["--initial-cluster"] == "m1=a,m2=b,m3=c"
    assert not [a for a in cmd if "unsafe" in a]


def test_triumvir_replica_command_names_every_peer():
    addresses = {3: "127.0.0.1:7003", 1: "127.0.0.1:7001", 2: "127.0.0.1:7002"}
    cmd = replica_command(2, addresses, Path("/tmp/x/2"), "raft")
    assert cmd[:5] == [sys.executable, "-m", "triumvir_client.cli", "serve", "consensus"]
    args = dict(zip(cmd[5::2], cmd[6::2], strict=True))
    assert args == {
        "--id": "2",
        "--listen": "127.0.0.1:7002",
        "--peers": "1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003",
        "--data-dir": "/tmp/x/2",
        "--engine": "raft",
    }


def test_triumvir_replicas_take_the_cpus_in_turn_as_triumvir_up_gives_them():
    addresses = {1: "127.0.0.1:7001", 2: "127.0.0.1:7002", 3: "127.0.0.1:7003"}
    cmd = replica_command(3, addresses, Path("/tmp/x/3"), "raft", cpus=(0, 1))
    assert dict(zip(cmd[5::2], cmd[6::2], strict=True))["--cpus"] == "0"
    assert not parse_args(["--no-spread-cpus"]).spread_cpus


def test_run_defaults_match_the_workload():
    settings = parse_args([])
    assert settings.concurrency == DEFAULT_CONCURRENCY == (1, 16, 64)
    assert settings.systems == SYSTEMS
    assert (settings.duration_s, settings.warmup_s, settings.rounds) == (5.0, 1.0, 3)
    assert settings.output == RESULTS_PATH
    assert [s.concurrency for s in settings.specs()] == [1, 16, 64]
    assert settings.as_json()["rounds"] == 3
    assert settings.spread_cpus


def test_run_arguments_are_parsed():
    settings = parse_args(
        ["--duration", "3", "--warmup", "0.5", "--concurrency", "4,8", "--systems", "etcd"]
    )
    assert settings.concurrency == (4, 8)
    assert settings.systems == ("etcd",)
    assert parse_args(["--rounds", "1"]).rounds == 1
    assert settings.specs()[1].duration_s == 3.0
    assert settings.specs()[1].warmup_s == 0.5


@pytest.mark.parametrize(
    "argv",
    [
        ["--systems", "zookeeper"],
        ["--concurrency", "a,b"],
        ["--concurrency", "0"],
        ["--engine", "x"],
        ["--rounds", "0"],
        ["--rounds", "-2"],
        ["--rounds", "two"],
        ["--rounds", "1.5"],
    ],
)
def test_bad_arguments_are_rejected(argv):
    with pytest.raises(SystemExit):
        parse_args(argv)


def test_round_order_alternates_between_given_and_reversed():
    systems = ("triumvir", "triumvir-paxos", "etcd")
    assert round_order(systems, 1) == systems
    assert round_order(systems, 2) == ("etcd", "triumvir-paxos", "triumvir")
    assert round_order(systems, 3) == systems
    assert round_order(systems, 4) == round_order(systems, 2)


def test_schedule_runs_the_systems_of_one_level_back_to_back_in_alternating_order():
    plan = list(schedule(("triumvir", "etcd"), 2, (1, 64)))
    assert plan == [
        (1, 1, "triumvir"),
        (1, 1, "etcd"),
        (1, 64, "triumvir"),
        (1, 64, "etcd"),
        (2, 1, "etcd"),
        (2, 1, "triumvir"),
        (2, 64, "etcd"),
        (2, 64, "triumvir"),
    ]
    assert list(schedule(("etcd",), 2, (16,))) == [(1, 16, "etcd"), (2, 16, "etcd")]
