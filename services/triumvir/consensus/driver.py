"""The replica driver: the only place where the pure consensus core meets time, disk and network.

One asyncio task owns the core. Everything that wants to touch the core (a tick, a peer
message, a proposal, a read) is put in the inbox and handled by that task, never while a
Ready is being processed, so the core is only ever called from one place at a time.

Handling a Ready follows the core's contract: persist with one fsync for the whole batch
(the leader sends its APPENDs while its own write is in flight — it counts itself only
after advance()), send the rest, apply committed entries, answer reads, then advance.
Proposals that arrive while the fsync runs wait in the inbox and form the next batch:
that is the group commit.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import heapq
import itertools
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from triumvir.common.errors import FailedPrecondition, Unavailable
from triumvir.common.logging import get_logger
from triumvir.consensus.config import ticks_for
from triumvir.consensus.metrics import DriverMetrics
from triumvir.consensus.raft.core import Role
from triumvir.consensus.raft.errors import (
    ConfChangeRejected,
    NotLeader,
    ProposalDropped,
    TransferRejected,
)
from triumvir.consensus.raft.types import (
    NO_NODE,
    ConfChange,
    ConfState,
    Entry,
    EntryKind,
    HardState,
    Message,
    Ready,
    Snapshot,
    SnapshotMeta,
)
from triumvir.consensus.storage.interface import RaftStorage, StaleSnapshot

INBOX_EVENTS_PER_TURN_MAX = 4096
# A follower writes and fsyncs on the loop itself: it answers only once the batch is durable,
# and a ~0.1 ms fsync costs less than handing the batch to a thread and waking the loop
# again. A leader with a lone write does the same once its APPENDs are on the wire: the
# followers' answers take longer than its fsync. A leader uses the WAL thread whenever
# several writes wait: its loop must stay free so answers are taken in (two followers make
# a quorum without the leader's own write) and requests keep arriving to form the next batch.
PERSIST_INLINE_ENTRIES_MAX = 1
BATCH_WINDOW_WAITERS_MIN = 8
BATCH_WINDOW_S = 0.006
# Once writes have crowded in, the driver keeps gathering them for a while even when few are
# waiting. Right after a large batch is answered, its callers' next writes reach the driver
# one at a time (the gRPC server takes in one call per turn of the loop), so the count of
# waiting writes is lowest exactly when the load is highest; gathering only by that count,
# each of those writes went out alone, with an fsync and APPENDs of its own, and batches
# stayed small for as long as the load lasted.
BATCH_MODE_LINGER_S = 0.05
# A window ends early once this long passes without a new proposal. Under a heavy load new
# requests reach the loop every fraction of a millisecond; with a few writers (16, say) they
# all come within a moment of their answers and then nothing more can come until the next
# commit, which the rest of the window would only delay. Most windows end sooner still: see
# Driver._callers_away.
BATCH_QUIET_GAP_S = 0.0015
SNAPSHOT_RETRY_S = 5.0  # after a snapshot could not be written (disk full, I/O error)
READ_TIMEOUT_S = 2.0  # a read index not confirmed by then is refused (leader lost)
READ_EXPIRY_CHECK_S = 0.1


def _end_window(window: asyncio.Future[None]) -> None:
    # The last caller and the timer can both end a window in the same turn of the loop.
    if not window.done():
        window.set_result(None)


class StateMachine(Protocol):
    def apply(self, index: int, data: bytes) -> Any: ...
    def skip(self, index: int) -> None: ...
    def snapshot_later(self) -> Callable[[], bytes]: ...
    def restore(self, data: bytes) -> None: ...


class Core(Protocol):
    """The contract both engines' cores keep (see `triumvir.consensus.raft.types.Ready`)."""

    node_id: int
    term: int
    vote: int
    role: Role
    leader_id: int
    commit_index: int
    applied_index: int
    conf: ConfState
    snapshot_meta: SnapshotMeta

    def tick(self) -> None: ...
    def step(self, message: Any) -> None: ...
    def propose(self, data: bytes) -> tuple[int, int]: ...
    def propose_conf_change(self, change: ConfChange) -> tuple[int, int]: ...
    def read_index(self, context: bytes) -> None: ...
    def transfer_leader(self, target: int) -> None: ...
    def has_ready(self) -> bool: ...
    def ready(self) -> Ready: ...
    def advance(self, ready: Ready) -> None: ...
    def compact(self, snapshot: Snapshot) -> None: ...
    def forget_snapshot_request(self) -> None: ...
    def snapshot_meta_for(self, index: int) -> SnapshotMeta: ...


class ProposalLost(Unavailable):
    """The entry was overwritten by a new leader: it was not applied and never will be."""


@dataclass(slots=True)
class _Waiter:
    term: int
    future: asyncio.Future[Any]
    proposed_at: float  # time.perf_counter() when the driver took the proposal


class Driver:
    def __init__(
        self,
        *,
        core: Core,
        storage: RaftStorage,
        machine: StateMachine,
        send: Callable[[Message], None],
        tick_s: float,
        address_of: Callable[[int], str],
        on_membership: Callable[[ConfState], None] = lambda conf: None,
        on_apply: Callable[[Entry, Any], None] = lambda entry, result: None,
        on_tick: Callable[[], None] = lambda: None,
        sends_before_persist: Callable[[Any], bool] = lambda message: False,
        metrics: DriverMetrics | None = None,
    ) -> None:
        self.core = core
        self._storage = storage
        self._machine = machine
        self._send = send
        self._tick_s = tick_s
        self._address_of = address_of
        self._on_membership = on_membership
        self._on_apply = on_apply
        self._on_tick = on_tick
        # Which of a leader's messages may leave while its own WAL write is still running:
        # those carrying entries it has not counted for itself yet (it counts itself only
        # after advance()). The engine decides; by default everything waits for the fsync.
        self._sends_before_persist = sends_before_persist
        self._metrics = DriverMetrics() if metrics is None else metrics
        self._io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wal")
        self._encoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="snapshot")
        self._snapshotting: asyncio.Task[None] | None = None
        self._inbox: collections.deque[Callable[[], None]] = collections.deque()
        self._wake = asyncio.Event()
        self._waiters: dict[int, _Waiter] = {}
        self._read_ids = itertools.count(1)
        self._reads: dict[bytes, tuple[asyncio.Future[int], int]] = {}  # ctx -> (future, tick)
        self._ready_reads: list[tuple[int, int, asyncio.Future[int]]] = []  # heap by index
        self._ticks = 0
        self._read_timeout_ticks = ticks_for(READ_TIMEOUT_S, tick_s * 1000)
        self._read_check_ticks = ticks_for(READ_EXPIRY_CHECK_S, tick_s * 1000)
        self._applied = core.applied_index
        self._persisted_hard_state = HardState(core.term, core.vote, core.commit_index)
        self._tasks: list[asyncio.Task[None]] = []
        self._log = get_logger(node_id=core.node_id)
        self.stats: collections.Counter[str] = collections.Counter()
        self._last_leader = NO_NODE
        self._gathering_until = 0.0  # loop time until which proposals are gathered
        self._proposals = 0  # proposals received so far: a window ends when none come
        self._proposals_taken = 0  # of those, the ones already handed to the core
        # Writes answered whose callers have not written again since. Most callers write in
        # a loop and send their next write the moment they have an answer, so once this is
        # back to zero everyone a window waits for is in, and it ends then rather than a
        # quiet gap later. Callers who do not come back are forgotten at the next quiet gap.
        self._callers_away = 0
        self._window: asyncio.Future[None] | None = None  # the open window, if any

    # ---- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._run()), loop.create_task(self._ticker())]

    async def stop(self) -> None:
        self._log.info("driver stopping", **self.stats)
        tasks = [*self._tasks, *([self._snapshotting] if self._snapshotting else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for waiter in self._waiters.values():
            if not waiter.future.done():
                waiter.future.set_exception(Unavailable("replica is shutting down"))
        self._encoder.shutdown(wait=True, cancel_futures=True)
        self._io.shutdown(wait=True)
        self._storage.close()

    # ---- inputs ----------------------------------------------------------------------

    def deliver(self, message: Message) -> None:
        """A message from a peer (called by the peer servicer)."""
        self.stats["messages_received"] += 1
        self._submit(lambda: self.core.step(message))

    async def propose(self, data: bytes) -> Any:
        """Replicate `data`; returns what the state machine returned when it applied it."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        proposed_at = time.perf_counter()
        self._proposals += 1
        if self._callers_away:
            self._callers_away -= 1
            if not self._callers_away and self._window is not None:
                _end_window(self._window)

        def run() -> None:
            try:
                term, index = self.core.propose(data)
            except NotLeader as exc:
                future.set_exception(self._not_leader(exc.leader_id))
            except ProposalDropped as exc:
                future.set_exception(Unavailable(f"proposal refused: {exc}; retry shortly"))
            else:
                self._waiters[index] = _Waiter(term, future, proposed_at)

        self._submit(run)
        return await future

    async def change_membership(self, change: ConfChange) -> None:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        proposed_at = time.perf_counter()

        def run() -> None:
            try:
                term, index = self.core.propose_conf_change(change)
            except NotLeader as exc:
                future.set_exception(self._not_leader(exc.leader_id))
            except (ConfChangeRejected, ProposalDropped) as exc:
                future.set_exception(FailedPrecondition(str(exc)))
            else:
                self._waiters[index] = _Waiter(term, future, proposed_at)

        self._submit(run)
        await future

    async def read_barrier(self) -> int:
        """Wait until a linearizable read may be served locally; returns the read index."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        context = next(self._read_ids).to_bytes(8, "big")

        def run() -> None:
            try:
                self.core.read_index(context)
            except NotLeader as exc:
                future.set_exception(self._not_leader(exc.leader_id))
            else:
                self._reads[context] = (future, self._ticks)

        self._submit(run)
        return await future

    async def transfer_leader(self, target: int) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def run() -> None:
            if self.core.role is not Role.LEADER:
                future.set_exception(self._not_leader(self.core.leader_id))
                return
            try:
                self.core.transfer_leader(target)
            except (TransferRejected, ConfChangeRejected) as exc:
                future.set_exception(FailedPrecondition(str(exc)))
            else:
                future.set_result(None)

        self._submit(run)
        await future

    def _submit(self, action: Callable[[], None]) -> None:
        self._inbox.append(action)
        self._wake.set()

    def _not_leader(self, leader_id: int) -> Unavailable:
        address = self._address_of(leader_id) if leader_id else ""
        where = f"member {leader_id} at {address}" if leader_id else "unknown (election running)"
        return Unavailable(
            f"member {self.core.node_id} is not the leader; the leader is {where}",
            leader_id=leader_id,
            leader_address=address,
        )

    # ---- the loop --------------------------------------------------------------------

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(self._tick_s)
            self._submit(self._tick)

    def _tick(self) -> None:
        self._ticks += 1
        self.core.tick()
        self._on_tick()
        if self._reads and self._ticks % self._read_check_ticks == 0:
            self._expire_reads()

    def _expire_reads(self) -> None:
        for context, (future, started) in list(self._reads.items()):
            if self._ticks - started >= self._read_timeout_ticks:
                del self._reads[context]
                if not future.done():
                    future.set_exception(
                        Unavailable("could not confirm leadership for a linearizable read; retry")
                    )

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            if len(self._waiters) > 1:
                # Several writes are in flight, so more may be coming: one turn of the loop
                # lets every request handler that is already runnable put its proposal in the
                # inbox, so they share the coming batch and its fsync. A lone writer's next
                # write cannot come before this one is answered, so its proposal, the
                # answers that commit it, and a follower's APPEND are handled at once.
                await asyncio.sleep(0)
            if self._proposals != self._proposals_taken and self._gathering(loop.time()):
                # Many writes in flight, now or lately: the loop is busy and each batch costs
                # a stream write per follower, so gather proposals a little longer and send
                # fewer, fuller batches. Followers' answers that came meanwhile wait with them:
                # one Ready then commits, applies and proposes the window's work. Answers alone
                # never wait: they commit writes whose callers wait, and whose next writes the
                # coming window gathers. A lone writer never waits.
                await self._gather(loop)
            self._wake.clear()
            self._proposals_taken = self._proposals
            for _ in range(INBOX_EVENTS_PER_TURN_MAX):
                if not self._inbox:
                    break
                action = self._inbox.popleft()
                try:
                    action()
                except Exception:
                    # A malformed peer message must not stop the replica.
                    self._log.exception("core rejected an input")
            if self._inbox:
                self._wake.set()
            if len(self._waiters) >= BATCH_WINDOW_WAITERS_MIN:
                self._gathering_until = loop.time() + BATCH_MODE_LINGER_S
            while self.core.has_ready():
                await self._handle(self.core.ready())

    async def _gather(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wait up to BATCH_WINDOW_S for more proposals, but only while callers answered
        lately are still to come back (see _callers_away), and no longer than proposals keep
        coming: when every writer is already waiting for an answer, none can arrive, and
        waiting out the window would only hold back the answers (see BATCH_QUIET_GAP_S)."""
        deadline = loop.time() + BATCH_WINDOW_S
        seen = self._proposals
        while self._callers_away and (left := deadline - loop.time()) > 0:
            self._window = window = loop.create_future()
            timer = loop.call_later(min(BATCH_QUIET_GAP_S, left), _end_window, window)
            try:
                await window
            finally:
                timer.cancel()
                self._window = None
            if self._proposals == seen:
                self._callers_away = 0  # a quiet gap: those still away are not coming soon
                return
            seen = self._proposals

    def _gathering(self, now: float) -> bool:
        """Whether this turn gathers proposals (see BATCH_MODE_LINGER_S and _gather)."""
        return len(self._waiters) >= BATCH_WINDOW_WAITERS_MIN or now < self._gathering_until

    async def _handle(self, ready: Ready) -> None:
        early: list[Message] = []
        late: list[Message] = []
        # A leader whose term and vote are already on disk may send its APPENDs while its
        # own write runs; a moved commit index alone never holds them back.
        leader = self.core.role is Role.LEADER and not self._vote_changed(ready)
        for message in ready.messages:
            (early if leader and self._sends_before_persist(message) else late).append(message)
        self.stats["readies"] += 1
        self.stats["messages_sent"] += len(ready.messages)
        self.stats["entries_persisted"] += len(ready.entries)
        self.stats["entries_applied"] += len(ready.committed)
        for message in early:
            self._send(message)
        if ready.snapshot is not None or ready.entries or self._vote_changed(ready):
            if self._persist_inline(ready):
                if early:
                    await asyncio.sleep(0)  # one turn puts the APPENDs on the wire first
                self._persist(ready)
            else:
                await asyncio.get_running_loop().run_in_executor(self._io, self._persist, ready)
        elif ready.hard_state is not None:
            # Only the commit index moved. It is recomputed from a quorum after a restart, so
            # it rides along with the next fsync instead of costing one of its own.
            self._storage.set_hard_state(ready.hard_state)
        if ready.hard_state is not None:
            self._persisted_hard_state = ready.hard_state
        for message in late:
            self._send(message)
        if late and ready.committed:
            await asyncio.sleep(0)  # the answers go to the wire before applying delays them
        if ready.snapshot is not None:
            self._machine.restore(ready.snapshot.data)
            self._applied = ready.snapshot.meta.index
            self._log.info(
                "installed snapshot from leader",
                index=ready.snapshot.meta.index,
                bytes=len(ready.snapshot.data),
            )
        for entry in ready.committed:
            self._apply(entry)
        if ready.snapshot is not None or any(
            entry.kind is EntryKind.CONF_CHANGE for entry in ready.committed
        ):
            # The core adopts a membership change when it commits, so its conf is current.
            self._on_membership(self.core.conf)
        for read in ready.reads:
            pending = self._reads.pop(read.context, None)
            if pending is not None:
                heapq.heappush(self._ready_reads, (read.index, id(pending[0]), pending[0]))
        self._answer_reads()
        if ready.snapshot_wanted:
            self._start_snapshot()
        self.core.advance(ready)
        if self.core.leader_id != self._last_leader:
            self._last_leader = self.core.leader_id
            self._metrics.leader_changes.inc()
            self._log.info(
                "leader changed",
                leader_id=self.core.leader_id,
                term=self.core.term,
                role=self.core.role.name.lower(),
            )

    def _persist_inline(self, ready: Ready) -> bool:
        # A leader persists inline only when nothing else is waiting: under concurrency its
        # loop must keep accepting requests during the fsync, or every batch holds one entry.
        if ready.snapshot is not None:
            return False
        if self.core.role is not Role.LEADER:
            # A follower answers only once the batch is durable and has nothing else to do
            # meanwhile: a thread would only add two wake-ups to every APPEND's answer.
            return True
        return (
            len(ready.entries) <= PERSIST_INLINE_ENTRIES_MAX
            and not self._inbox
            and len(self._waiters) <= PERSIST_INLINE_ENTRIES_MAX
        )

    def _vote_changed(self, ready: Ready) -> bool:
        previous, current = self._persisted_hard_state, ready.hard_state
        return current is not None and (
            current.term != previous.term or current.vote != previous.vote
        )

    def _persist(self, ready: Ready) -> None:
        if ready.snapshot is not None:
            self._storage.save_snapshot(ready.snapshot)
        if ready.entries:
            self._storage.append(ready.entries)
        if ready.hard_state is not None:
            self._storage.set_hard_state(ready.hard_state)
        started = time.perf_counter()
        self._storage.sync()
        self._metrics.fsync_seconds.observe(time.perf_counter() - started)
        self.stats["fsyncs"] += 1

    def _apply(self, entry: Entry) -> None:
        result: Any = None
        if entry.kind is EntryKind.NORMAL:
            result = self._machine.apply(entry.index, entry.data)
        else:
            self._machine.skip(entry.index)  # no-ops and membership changes carry no command
        self._applied = entry.index
        self._on_apply(entry, result)
        waiter = self._waiters.pop(entry.index, None)
        if waiter is None or waiter.future.done():
            return
        self._callers_away += 1
        if waiter.term == entry.term:
            self._metrics.commit_seconds.observe(time.perf_counter() - waiter.proposed_at)
            if isinstance(result, BaseException):
                waiter.future.set_exception(result)
            else:
                waiter.future.set_result(result)
        else:
            waiter.future.set_exception(
                ProposalLost("the write was overwritten by a new leader and not applied; retry")
            )

    def _answer_reads(self) -> None:
        while self._ready_reads and self._ready_reads[0][0] <= self._applied:
            index, _, future = heapq.heappop(self._ready_reads)
            if not future.done():
                future.set_result(index)

    def _start_snapshot(self) -> None:
        """Snapshot the state machine at the applied index without stopping the replica.

        The view of the state is taken now; encoding it (seconds for a large store) runs on
        a thread of its own while entries keep being written and applied, so heartbeats
        still go out and no election starts. The file is saved through the WAL thread,
        after the writes queued before it, and the core compacts its log afterwards.
        """
        if self._snapshotting is not None and not self._snapshotting.done():
            return  # the core asks again once the running one is compacted
        # The core knows the term and membership at the applied index; the file on disk must
        # carry exactly what the core will keep after compact().
        meta = self.core.snapshot_meta_for(self._applied)
        encode = self._machine.snapshot_later()
        self._snapshotting = asyncio.get_running_loop().create_task(
            self._write_snapshot(meta, encode)
        )

    async def _write_snapshot(self, meta: SnapshotMeta, encode: Callable[[], bytes]) -> None:
        loop = asyncio.get_running_loop()
        try:
            snapshot = Snapshot(meta, await loop.run_in_executor(self._encoder, encode))
            await loop.run_in_executor(self._io, self._storage.save_snapshot, snapshot)
        except StaleSnapshot:
            # The leader sent a newer snapshot meanwhile, and it is installed.
            self._submit(self.core.forget_snapshot_request)
            return
        except Exception:
            self._log.exception("snapshot failed; trying again later")
            loop.call_later(SNAPSHOT_RETRY_S, self._submit, self.core.forget_snapshot_request)
            return

        def compact() -> None:
            self.core.compact(snapshot)
            self.core.forget_snapshot_request()

        self._submit(compact)
        self._log.info("snapshot taken", index=meta.index, bytes=len(snapshot.data))

    # ---- observation -----------------------------------------------------------------

    @property
    def applied_index(self) -> int:
        return self._applied

    def has_leader(self) -> bool:
        return self.core.leader_id != NO_NODE and self.core.node_id in self.core.conf.members()
