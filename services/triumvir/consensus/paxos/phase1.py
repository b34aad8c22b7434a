"""Phase 1 arithmetic: what a new leader must re-propose, and whether its promises suffice.

Rule (Paxos, per slot): among the values a set of promisers reported for a slot, propose the
one accepted under the highest ballot; if none was reported, the slot is free and gets a
no-op. That is safe when the promisers include a quorum of the configuration that governs
the slot, so every value that could have been chosen there was reported by someone.

Configurations change only through CONF_CHANGE values and take effect for the slots after
them, so the slots a new leader re-proposes may be governed by a sequence of configurations:
the one in force after its chosen prefix, then one more after each re-proposed membership
change. Its promisers must cover a quorum of each.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from triumvir.consensus.paxos.types import ORIGIN_BYTES, same_value, tag_value
from triumvir.consensus.raft.membership import apply_conf_change
from triumvir.consensus.raft.quorum import has_quorum
from triumvir.consensus.raft.types import ConfChange, ConfState, Entry, EntryKind


def merge_reports(reports: Iterable[Iterable[Entry]], after: int) -> dict[int, Entry]:
    """Slot -> the reported value with the highest accepted ballot, for slots > `after`."""
    best: dict[int, Entry] = {}
    for report in reports:
        for value in report:
            if value.index <= after:
                continue
            known = best.get(value.index)
            if known is None or value.term > known.term:
                best[value.index] = value
            else:
                # One ballot proposes one value per slot: equal ballots must agree.
                assert value.term != known.term or same_value(value, known), (
                    f"two values under ballot {value.term} at slot {value.index}"
                )
    return best


def reproposals(merged: Mapping[int, Entry], after: int, ballot: int) -> list[Entry]:
    """Every slot from `after + 1` through the highest merged one, under `ballot`: the merged
    value where there is one (keeping its origin), a no-op of this ballot in the gaps."""
    if not merged:
        return []
    out: list[Entry] = []
    for slot in range(after + 1, max(merged) + 1):
        value = merged.get(slot)
        if value is None:
            out.append(Entry(ballot, slot, EntryKind.NOOP, tag_value(ballot, b"")))
        else:
            out.append(Entry(ballot, slot, value.kind, value.data))
    return out


def config_sequence(conf: ConfState, values: Iterable[Entry]) -> list[ConfState]:
    """`conf`, then the configuration after each membership change among `values` (in slot
    order): every configuration that may govern one of those slots or the next free one."""
    sequence = [conf]
    for value in values:
        if value.kind is EntryKind.CONF_CHANGE:
            conf = apply_change(conf, value)
            sequence.append(conf)
    return sequence


def apply_change(conf: ConfState, stored: Entry) -> ConfState:
    """Apply a stored CONF_CHANGE value (origin-tagged data) to `conf`."""
    try:
        change = ConfChange.decode(stored.data[ORIGIN_BYTES:])
    except ValueError:
        return conf  # not a change any leader proposed; every replica skips it alike
    return apply_conf_change(conf, change)


def covers_quorums(confs: Iterable[ConfState], promisers: Collection[int]) -> bool:
    return all(has_quorum(conf.voters, promisers) for conf in confs)
