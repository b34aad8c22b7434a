"""Simulated clients: puts, linearizable gets and compare-and-sets on a few keys.

Each client runs one operation at a time and records it in a Jepsen-style `History`:

- a write (put/cas) is proposed to the node the client believes leads; it is ok once that
  node applies the entry at the returned (term, index) with the same term (the result comes
  from the state machine), fail when refused or when that node applies another term's entry
  at that index, info on timeout, crash, or when a snapshot skips over the index;
- a get goes through read_index and is answered from the node's own state machine once it
  has applied the read index; a read that is not answered in time simply fails.

Values are unique within a run, so a stale or lost read cannot hide behind a repeated value.
The workload also runs the liveness probe of the heal phase: one write outside the history
that must commit once the cluster is whole again.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tests.checkers.history import History
from tests.checkers.invariants import AckedWrite
from tests.sim.engine import Applied, Engine, Replica
from tests.sim.kvmodel import Cas, KvModel, Put, encode
from tests.sim.trace import Trace

MAX_CLIENTS = 8
MAX_KEYS = 8
OP_TIMEOUT_TICKS = 60
THINK_TICKS_MAX = 6
RECENT_VALUES_MAX = 4
PROBE_KEY = "__liveness"


@dataclass(slots=True)
class _Op:
    op_id: int
    process: int
    f: str
    key: str
    node: int
    deadline: int
    payload: bytes = b""  # the proposed command, for writes
    new_value: str = ""  # the value a write stores
    term: int = 0
    index: int = 0
    context: bytes = b""
    read_index: int = -1  # set once the node reported the read's ReadState


@dataclass(slots=True)
class _Client:
    process: int
    target: int = 0  # the node this client believes leads; 0 when it has no idea
    busy: bool = False
    next_at: int = 0
    written: int = 0  # values this client has written, for unique names


@dataclass(frozen=True, slots=True)
class _Probe:
    node: int
    term: int
    index: int


@dataclass(slots=True)
class ProbeState:
    attempts: int = 0
    committed_at: int | None = None
    pending: _Probe | None = None


class Workload:
    def __init__(
        self,
        rng: random.Random,
        engine: Engine,
        trace: Trace,
        *,
        clients: int,
        keys: Sequence[str],
    ) -> None:
        assert 1 <= clients <= MAX_CLIENTS and 1 <= len(keys) <= MAX_KEYS
        self._rng = rng
        self._engine = engine
        self._trace = trace
        self.history = History()
        self.keys = tuple(keys)
        self._clients = [_Client(process) for process in range(clients)]
        self._open: dict[int, _Op] = {}  # op_id -> op, in invoke order
        self._writes_at: dict[int, dict[int, list[_Op]]] = {}  # node -> index -> ops
        self._reads_by_context: dict[bytes, _Op] = {}
        self._reads_waiting: dict[int, list[_Op]] = {}  # node -> reads with a read index
        self._recent: dict[str, list[str | None]] = {key: [None] for key in self.keys}
        self.acked: list[AckedWrite] = []
        self.violations: list[str] = []
        self.probe = ProbeState()

    # -- issuing -----------------------------------------------------------------------------

    def issue(self, now: int, live: Sequence[int], replica: Callable[[int], Replica]) -> None:
        """Start an operation for every idle client whose think time is over."""
        if not live:
            return
        for client in self._clients:
            if client.busy or client.next_at > now:
                continue
            node = client.target if client.target in live else self._rng.choice(live)
            roll = self._rng.random()
            key = self._rng.choice(self.keys)
            if roll < 0.35:
                self._write(client, node, replica(node), now, "put", key)
            elif roll < 0.7:
                self._read(client, node, replica(node), now, key)
            else:
                self._write(client, node, replica(node), now, "cas", key)

    def _value(self, client: _Client) -> str:
        client.written += 1
        return f"{client.process}.{client.written}"

    def _write(
        self, client: _Client, node: int, replica: Replica, now: int, f: str, key: str
    ) -> None:
        new = self._value(client)
        if f == "put":
            value: object = new
            payload = encode(Put(key, new))
        else:
            recent = self._recent[key]
            expected = recent[-1] if self._rng.random() < 0.75 else self._rng.choice(recent)
            value = (expected, new)
            payload = encode(Cas(key, expected, new))
        op_id = self.history.invoke(client.process, f, key, value, now)
        client.busy = True
        op = _Op(op_id, client.process, f, key, node, now + OP_TIMEOUT_TICKS, payload, new)
        self._trace.record(f"c {now} {client.process} {op_id} {f} {key} {value} @{node}")
        try:
            op.term, op.index = replica.core.propose(payload)
        except self._engine.refusals as refusal:
            client.target = self._engine.leader_hint(refusal)
            self._finish(op, now, "fail")
            return
        self._open[op_id] = op
        self._writes_at.setdefault(node, {}).setdefault(op.index, []).append(op)

    def _read(self, client: _Client, node: int, replica: Replica, now: int, key: str) -> None:
        op_id = self.history.invoke(client.process, "get", key, None, now)
        client.busy = True
        op = _Op(op_id, client.process, "get", key, node, now + OP_TIMEOUT_TICKS)
        op.context = b"read-%d" % op_id
        self._trace.record(f"c {now} {client.process} {op_id} get {key} @{node}")
        try:
            replica.core.read_index(op.context)
        except self._engine.refusals as refusal:
            client.target = self._engine.leader_hint(refusal)
            self._finish(op, now, "fail")
            return
        self._open[op_id] = op
        self._reads_by_context[op.context] = op

    # -- completions ---------------------------------------------------------------------------

    def _finish(self, op: _Op, now: int, outcome: str, result: object = None) -> None:
        self._open.pop(op.op_id, None)
        if outcome == "ok":
            self.history.ok(op.op_id, result, now)
        elif outcome == "fail":
            self.history.fail(op.op_id, now)
        else:
            self.history.info(op.op_id, now)
        if op.context:
            self._reads_by_context.pop(op.context, None)
        client = self._clients[op.process]
        client.busy = False
        client.next_at = now + self._rng.randint(0, THINK_TICKS_MAX)
        self._trace.record(f"r {now} {op.op_id} {outcome} {result}")

    def on_apply(self, node: int, applied: Applied, result: bool | None, now: int) -> None:
        probe = self.probe.pending
        if probe is not None and probe.node == node and probe.index == applied.index:
            self.probe.pending = None
            if probe.term == applied.term:
                self.probe.committed_at = now
        waiting = self._writes_at.get(node)
        if not waiting:
            return
        ops = waiting.pop(applied.index, None)
        if not ops:
            return
        for op in ops:
            if op.term != applied.term:
                self._finish(op, now, "fail")  # another leader's entry won this index
                continue
            if applied.data != op.payload:
                self.violations.append(
                    f"propose: op {op.op_id} was given index {op.index} term {op.term}, but "
                    f"the entry applied there is a different command"
                )
            self._finish(op, now, "ok", result)
            if result:
                self.acked.append(AckedWrite(op.op_id, op.index, op.term, applied.payload))
                self._remember(op.key, op.new_value)

    def _remember(self, key: str, value: str) -> None:
        """Keep a few values the key recently held, so cas ops often expect the right one."""
        recent = self._recent[key]
        if recent[-1] == value:
            return
        recent.append(value)
        if len(recent) > RECENT_VALUES_MAX:
            del recent[0]

    def on_snapshot(self, node: int, index: int, now: int) -> None:
        """The node's state machine jumped to `index`: writes waiting at or below it will
        never be seen applied there, so their outcome is unknown."""
        waiting = self._writes_at.get(node)
        if waiting:
            for position in sorted(p for p in waiting if p <= index):
                for op in waiting.pop(position):
                    self._finish(op, now, "info")
        probe = self.probe.pending
        if probe is not None and probe.node == node and probe.index <= index:
            self.probe.pending = None

    def on_read_state(self, node: int, context: bytes, index: int) -> None:
        op = self._reads_by_context.get(context)
        if op is None or op.node != node or op.read_index >= 0:
            return  # a duplicate, or a read this incarnation of the node never issued
        op.read_index = index
        self._reads_waiting.setdefault(node, []).append(op)

    def serve_reads(self, node: int, kv: KvModel, now: int) -> None:
        waiting = self._reads_waiting.get(node)
        if not waiting:
            return
        still: list[_Op] = []
        for op in waiting:
            if op.op_id not in self._open:
                continue  # timed out meanwhile
            if kv.applied_index >= op.read_index:
                value = kv.get(op.key)
                self._finish(op, now, "ok", value)
                if value is not None:
                    self._remember(op.key, value)
            else:
                still.append(op)
        self._reads_waiting[node] = still

    def on_crash(self, node: int, now: int) -> None:
        for op in [op for op in self._open.values() if op.node == node]:
            self._finish(op, now, "fail" if op.f == "get" else "info")
        self._writes_at.pop(node, None)
        self._reads_waiting.pop(node, None)
        if self.probe.pending is not None and self.probe.pending.node == node:
            self.probe.pending = None

    def expire(self, now: int) -> None:
        expired = [op for op in self._open.values() if op.deadline <= now]
        for op in expired:
            self._finish(op, now, "fail" if op.f == "get" else "info")
            if op.f != "get":
                ops = self._writes_at.get(op.node, {}).get(op.index)
                if ops and op in ops:
                    ops.remove(op)

    def close(self, now: int) -> None:
        """End of run: whatever is still open has an unknown outcome."""
        self.expire(now + OP_TIMEOUT_TICKS)

    def pending(self) -> int:
        return len(self._open)

    # -- the heal phase's liveness probe -------------------------------------------------------

    def propose_probe(self, node: int, replica: Replica, now: int) -> None:
        if self.probe.pending is not None or self.probe.committed_at is not None:
            return
        self.probe.attempts += 1
        payload = encode(Put(PROBE_KEY, f"probe.{self.probe.attempts}"))
        try:
            term, index = replica.core.propose(payload)
        except self._engine.refusals:
            return
        self.probe.pending = _Probe(node, term, index)
        self._trace.record(f"p {now} {node} {term} {index}")
