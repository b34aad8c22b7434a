"""How one consensus replica is configured: flags, environment variables and defaults.

Every flag has an environment variable (`TRIUMVIR_` + the flag name in upper case with
dashes as underscores); a flag given on the command line wins over the environment.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from triumvir.common.cpus import CpuListError, check_allowed, parse_cpu_list

KEY_BYTES_MAX_DEFAULT = 4 * 1024
VALUE_BYTES_MAX_DEFAULT = 3 * 512 * 1024  # 1.5 MiB
REQUEST_BYTES_MAX_DEFAULT = 2 * 1024 * 1024
# A replica wakes once a tick even when idle, and a leader sends a heartbeat to every peer
# each heartbeat interval: 25 ms ticks and 50 ms heartbeats keep an idle replica near 3% of
# a core (10 ms and 30 ms cost about twice that), while a failed leader is still replaced
# within 300-600 ms plus one election.
TICK_MS_DEFAULT = 25
ELECTION_TICKS_DEFAULT = 12  # 300 ms, randomized up to twice that
HEARTBEAT_TICKS_DEFAULT = 2  # 50 ms: six heartbeats within the shortest election timeout
ENGINES = ("raft", "paxos")  # engines this build can run
EVENT_LOOPS = ("uvloop", "asyncio")  # uvloop: same asyncio API, far less CPU per wake-up


def ticks_for(seconds: float, tick_ms: float) -> int:
    """How many ticks (at least one) last `seconds`: for periods that must not change
    with the tick length."""
    return max(1, math.ceil(seconds * 1000 / tick_ms))


class ConfigError(ValueError):
    """A flag or environment variable has a value the replica cannot start with."""


@dataclass(frozen=True, slots=True)
class ReplicaConfig:
    node_id: int
    listen: str  # host:port serving clients and peers
    data_dir: str
    peers: Mapping[int, str] = field(default_factory=dict)  # id -> host:port, self included
    join: bool = False  # start with no membership and wait to be added as a learner
    engine: str = "raft"
    cluster_id: int = 1
    advertise: str = ""  # address other members and clients should use; defaults to listen
    tick_ms: int = TICK_MS_DEFAULT
    election_ticks: int = ELECTION_TICKS_DEFAULT
    heartbeat_ticks: int = HEARTBEAT_TICKS_DEFAULT
    snapshot_threshold_entries: int = 10_000
    # Few unacknowledged APPENDs per follower on a LAN: entries proposed meanwhile gather into
    # the next one, so a busy leader sends fewer, fuller batches; two let a new entry reach
    # every follower at once even while the slower one still owes an answer. Raise it on
    # slow links.
    max_inflight_appends: int = 2
    # Raft sends a lone write to every follower at once instead of only to those a quorum
    # needs (see RaftConfig.thrifty): more CPU on every follower, and a lone write never
    # waits for a stalled follower to be overtaken at its next heartbeat.
    replicate_to_all: bool = False
    key_bytes_max: int = KEY_BYTES_MAX_DEFAULT
    value_bytes_max: int = VALUE_BYTES_MAX_DEFAULT
    request_bytes_max: int = REQUEST_BYTES_MAX_DEFAULT
    log_level: str = "info"
    event_loop: str = "uvloop"
    cpus: tuple[int, ...] = ()  # keep every thread on these CPUs; () lets the OS choose
    metrics_listen: str = ""  # host:port of the Prometheus endpoint; "" serves none

    @property
    def address(self) -> str:
        return self.advertise or self.listen


def parse_peers(text: str) -> dict[int, str]:
    """`1=127.0.0.1:7001,2=127.0.0.1:7002` -> {1: "127.0.0.1:7001", 2: "127.0.0.1:7002"}."""
    peers: dict[int, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        node, sep, address = item.partition("=")
        if not sep or not node.strip().isdigit() or int(node) <= 0 or ":" not in address:
            raise ConfigError(
                f"bad peer {item!r}: expected ID=HOST:PORT with a positive integer ID, "
                "e.g. 1=127.0.0.1:7001"
            )
        if int(node) in peers:
            raise ConfigError(f"peer id {node} is listed twice in {text!r}")
        peers[int(node)] = address.strip()
    return peers


_FLAGS: tuple[tuple[str, type, object, str], ...] = (
    ("id", int, None, "this replica's member id (a positive integer)"),
    ("listen", str, None, "host:port to serve clients and peers on"),
    ("data-dir", str, None, "directory for the WAL and snapshots"),
    ("peers", str, "", "the initial members, ID=HOST:PORT,... (this replica included)"),
    ("join", bool, False, "start empty and wait to be added with MemberAdd"),
    ("engine", str, "raft", "consensus engine: raft or paxos"),
    ("cluster-id", int, 1, "peers of a different cluster id are refused"),
    ("advertise", str, "", "address others should use for this replica (default: --listen)"),
    ("tick-ms", int, TICK_MS_DEFAULT, "length of one logical tick in milliseconds"),
    (
        "election-ticks",
        int,
        ELECTION_TICKS_DEFAULT,
        "election timeout, in ticks (randomized up to twice this)",
    ),
    ("heartbeat-ticks", int, HEARTBEAT_TICKS_DEFAULT, "heartbeat interval, in ticks"),
    ("snapshot-threshold-entries", int, 10_000, "applied entries between snapshots"),
    ("max-inflight-appends", int, 2, "unacknowledged replication batches per follower"),
    (
        "replicate-to-all",
        bool,
        False,
        "raft: send a lone write to every follower at once, not only to a quorum",
    ),
    ("key-bytes-max", int, KEY_BYTES_MAX_DEFAULT, "largest key accepted"),
    ("value-bytes-max", int, VALUE_BYTES_MAX_DEFAULT, "largest value accepted"),
    ("request-bytes-max", int, REQUEST_BYTES_MAX_DEFAULT, "largest request accepted"),
    ("log-level", str, "info", "debug, info, warning or error"),
    ("event-loop", str, "uvloop", "uvloop (fast) or asyncio (the standard library's loop)"),
    (
        "cpus",
        str,
        "",
        "keep this replica's threads on these CPUs, e.g. 0 or 2-3 (default: any CPU)",
    ),
    (
        "metrics-listen",
        str,
        "",
        "host:port to serve Prometheus metrics on, at /metrics (default: none)",
    ),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    for name, kind, _default, help_text in _FLAGS:
        env = "TRIUMVIR_" + name.upper().replace("-", "_")
        if kind is bool:
            parser.add_argument(f"--{name}", action="store_true", default=None, help=help_text)
        else:
            parser.add_argument(f"--{name}", type=kind, default=None, help=f"{help_text} [{env}]")


def from_arguments(
    args: argparse.Namespace, environ: Mapping[str, str] | None = None
) -> ReplicaConfig:
    environ = os.environ if environ is None else environ
    values: dict[str, object] = {}
    for name, kind, default, _help in _FLAGS:
        attr = name.replace("-", "_")
        env = "TRIUMVIR_" + attr.upper()
        value = getattr(args, attr, None)
        if value is None and env in environ:
            raw = environ[env]
            try:
                value = raw.lower() in ("1", "true", "yes") if kind is bool else kind(raw)
            except ValueError as exc:
                raise ConfigError(f"{env}={raw!r} is not a valid {kind.__name__}") from exc
        if value is None:
            if default is None:
                raise ConfigError(f"--{name} (or {env}) is required")
            value = default
        values[attr] = value
    return _validated(values)


def _validated(values: dict[str, object]) -> ReplicaConfig:
    node_id = int(values.pop("id"))  # type: ignore[call-overload]
    peers = parse_peers(str(values.pop("peers")))
    if node_id <= 0:
        raise ConfigError(f"--id must be a positive integer, got {node_id}")
    if values["engine"] not in ENGINES:
        raise ConfigError(f"--engine must be one of {', '.join(ENGINES)}, got {values['engine']!r}")
    if values["event_loop"] not in EVENT_LOOPS:
        raise ConfigError(
            f"--event-loop must be one of {', '.join(EVENT_LOOPS)}, got {values['event_loop']!r}"
        )
    values["cpus"] = _cpus(str(values["cpus"]))
    metrics_listen = str(values["metrics_listen"])
    if metrics_listen and not _is_host_port(metrics_listen):
        raise ConfigError(
            f"--metrics-listen must be HOST:PORT with a port in 1-65535, e.g. 0.0.0.0:9101; "
            f"got {metrics_listen!r}"
        )
    if not values["join"] and node_id not in peers:
        raise ConfigError(
            f"--peers must include this replica (id {node_id}) unless --join is given"
        )
    for name in (
        "tick_ms",
        "election_ticks",
        "heartbeat_ticks",
        "snapshot_threshold_entries",
        "max_inflight_appends",
        "key_bytes_max",
        "value_bytes_max",
        "request_bytes_max",
    ):
        if int(values[name]) <= 0:  # type: ignore[call-overload]
            raise ConfigError(f"--{name.replace('_', '-')} must be positive")
    if int(values["heartbeat_ticks"]) >= int(values["election_ticks"]):  # type: ignore[call-overload]
        raise ConfigError("--heartbeat-ticks must be smaller than --election-ticks")
    return ReplicaConfig(node_id=node_id, peers=peers, **values)  # type: ignore[arg-type]


def _is_host_port(text: str) -> bool:
    _, sep, port = text.rpartition(":")
    return bool(sep) and port.isdigit() and 1 <= int(port) <= 65535


def _cpus(text: str) -> tuple[int, ...]:
    if not text.strip():
        return ()
    try:
        cpus = parse_cpu_list(text)
        check_allowed(cpus)
    except CpuListError as exc:
        raise ConfigError(f"--cpus: {exc}") from exc
    return cpus


def parse(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> ReplicaConfig:
    parser = argparse.ArgumentParser(prog="triumvir serve consensus")
    add_arguments(parser)
    return from_arguments(parser.parse_args(list(argv)), environ)
