import os

import pytest

from triumvir.consensus.config import ConfigError, parse, parse_peers, ticks_for

BASE = ["--id", "1", "--listen", "127.0.0.1:7001", "--data-dir", "/tmp/d"]
PEERS = ["--peers", "1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003"]


def test_flags_build_the_config():
    config = parse([*BASE, *PEERS, "--tick-ms", "5"])
    assert config.node_id == 1 and config.tick_ms == 5
    assert config.peers == {1: "127.0.0.1:7001", 2: "127.0.0.1:7002", 3: "127.0.0.1:7003"}


def test_environment_fills_missing_flags_and_flags_win():
    env = {"TRIUMVIR_ELECTION_TICKS": "50", "TRIUMVIR_TICK_MS": "7"}
    config = parse([*BASE, *PEERS, "--tick-ms", "3"], env)
    assert (config.election_ticks, config.tick_ms) == (50, 3)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (BASE, "must include this replica"),
        ([*BASE, "--peers", "1=nohost"], "expected ID=HOST:PORT"),
        ([*BASE, "--peers", "1=a:1,1=b:2"], "listed twice"),
        ([*BASE, *PEERS, "--engine", "zab"], "--engine must be one of"),
        ([*BASE, *PEERS, "--event-loop", "tokio"], "--event-loop must be one of"),
        ([*BASE, *PEERS, "--heartbeat-ticks", "40"], "smaller than --election-ticks"),
        ([*BASE, *PEERS, "--max-inflight-appends", "0"], "--max-inflight-appends must be"),
        (["--listen", "h:1", "--data-dir", "d"], "--id (or TRIUMVIR_ID) is required"),
        ([*BASE, *PEERS, "--cpus", "0-x"], "--cpus: bad CPU list '0-x'"),
        ([*BASE, *PEERS, "--metrics-listen", "9101"], "--metrics-listen must be HOST:PORT"),
        ([*BASE, *PEERS, "--metrics-listen", "h:70000"], "--metrics-listen must be HOST:PORT"),
        ([*BASE, *PEERS, "--cpus", "4096"], "--cpus: CPUs [4096] are not available"),
    ],
)
def test_bad_configuration_is_refused_with_a_clear_message(argv, message):
    with pytest.raises(ConfigError) as caught:
        parse(argv, {})
    assert message in str(caught.value)


def test_two_replication_batches_in_flight_per_follower_unless_changed():
    assert parse([*BASE, *PEERS], {}).max_inflight_appends == 2
    assert parse([*BASE, *PEERS, "--max-inflight-appends", "8"], {}).max_inflight_appends == 8


def test_by_default_a_tick_is_25_ms_an_election_300_ms_and_a_heartbeat_50_ms():
    config = parse([*BASE, *PEERS], {})
    assert config.tick_ms == 25
    assert config.election_ticks * config.tick_ms == 300
    assert config.heartbeat_ticks * config.tick_ms == 50
    # Flags and environment still override each of them.
    env = {"TRIUMVIR_HEARTBEAT_TICKS": "3"}
    assert parse([*BASE, *PEERS, "--tick-ms", "10"], env).heartbeat_ticks == 3


def test_a_period_in_seconds_lasts_whole_ticks_and_at_least_one():
    assert ticks_for(2.0, 25) == 80
    assert ticks_for(0.1, 30) == 4  # rounded up: never shorter than asked
    assert ticks_for(0.001, 25) == 1


def test_uvloop_runs_the_replica_unless_the_standard_loop_is_asked_for():
    assert parse([*BASE, *PEERS], {}).event_loop == "uvloop"
    assert parse([*BASE, *PEERS], {"TRIUMVIR_EVENT_LOOP": "asyncio"}).event_loop == "asyncio"


def test_peer_list_tolerates_spaces_and_trailing_commas():
    assert parse_peers(" 1=a:1 , 2=b:2,") == {1: "a:1", 2: "b:2"}


def test_every_engine_offered_by_the_flags_can_be_built():
    from triumvir.consensus.config import ENGINES as OFFERED
    from triumvir.consensus.engines import ENGINES as BUILT

    assert set(OFFERED) == set(BUILT)


def test_raft_replicates_thriftily_unless_every_follower_is_asked_for():
    from triumvir.consensus.engines import _raft_core
    from triumvir.consensus.storage.interface import RecoveredState

    default = parse([*BASE, *PEERS], {})
    assert not default.replicate_to_all
    assert _raft_core(default, None, RecoveredState())._config.thrifty
    flagged = parse([*BASE, *PEERS, "--replicate-to-all"], {})
    assert not _raft_core(flagged, None, RecoveredState())._config.thrifty
    assert parse([*BASE, *PEERS], {"TRIUMVIR_REPLICATE_TO_ALL": "1"}).replicate_to_all


def test_a_replica_runs_on_any_cpu_unless_told_which():
    assert parse([*BASE, *PEERS]).cpus == ()
    cpu = min(os.sched_getaffinity(0))
    assert parse([*BASE, *PEERS], {"TRIUMVIR_CPUS": f"{cpu},{cpu}"}).cpus == (cpu,)
