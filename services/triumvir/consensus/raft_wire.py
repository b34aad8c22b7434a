"""Translation between the Raft core's message values and the `triumvir.v1.Raft` wire form.

Kept outside the core package so the core never touches protobuf.
"""

from __future__ import annotations

from triumvir.consensus.raft.types import (
    ConfState,
    Entry,
    EntryKind,
    Message,
    MessageType,
    SnapshotMeta,
)
from triumvir.v1 import raft_pb2

_ENTRY_KINDS = tuple(EntryKind)
_MESSAGE_TYPES = tuple(MessageType)


def conf_to_proto(conf: ConfState, out: raft_pb2.ConfState) -> None:
    out.voters.extend(sorted(conf.voters))
    out.learners.extend(sorted(conf.learners))
    for member_id, context in conf.contexts:
        out.contexts.add(id=member_id, context=context)
    out.retired.extend(sorted(conf.retired))


def conf_from_proto(conf: raft_pb2.ConfState) -> ConfState:
    return ConfState(
        voters=frozenset(conf.voters),
        learners=frozenset(conf.learners),
        contexts=tuple((member.id, member.context) for member in conf.contexts),
        retired=frozenset(conf.retired),
    )


def message_to_proto(message: Message, cluster_id: int) -> raft_pb2.RaftMessage:
    out = raft_pb2.RaftMessage(
        cluster_id=cluster_id,
        type=int(message.type),
        src=message.src,
        dst=message.dst,
        term=message.term,
        log_term=message.log_term,
        index=message.index,
        commit=message.commit,
        reject=message.reject,
        reject_hint=message.reject_hint,
        conflict_term=message.conflict_term,
        context=message.context,
        offset=message.offset,
        chunk=message.chunk,
        done=message.done,
    )
    if message.entries:
        add = out.entries.add
        for entry in message.entries:
            add(term=entry.term, index=entry.index, kind=int(entry.kind), data=entry.data)
    meta = message.snapshot_meta
    if meta is not None:
        out.snapshot_meta.index = meta.index
        out.snapshot_meta.term = meta.term
        conf_to_proto(meta.conf, out.snapshot_meta.conf)
    return out


def message_from_proto(wire: raft_pb2.RaftMessage) -> Message:
    meta = None
    if wire.HasField("snapshot_meta"):
        meta = SnapshotMeta(
            index=wire.snapshot_meta.index,
            term=wire.snapshot_meta.term,
            conf=conf_from_proto(wire.snapshot_meta.conf),
        )
    return Message(
        type=_MESSAGE_TYPES[wire.type],
        src=wire.src,
        dst=wire.dst,
        term=wire.term,
        log_term=wire.log_term,
        index=wire.index,
        entries=tuple(
            Entry(term=e.term, index=e.index, kind=_ENTRY_KINDS[e.kind], data=e.data)
            for e in wire.entries
        ),
        commit=wire.commit,
        reject=wire.reject,
        reject_hint=wire.reject_hint,
        conflict_term=wire.conflict_term,
        context=wire.context,
        snapshot_meta=meta,
        offset=wire.offset,
        chunk=wire.chunk,
        done=wire.done,
    )
