"""The simulated network: delay, reordering, loss, duplication and partitions."""

from __future__ import annotations

import random

from tests.sim.network import Network, NetworkFaults


def _network(faults: NetworkFaults, seed: int = 1) -> tuple[Network[str], list[tuple]]:
    drops: list[tuple] = []
    net: Network[str] = Network(
        random.Random(seed), faults, lambda why, s, d, m: drops.append((why, s, d, m))
    )
    return net, drops


def _drain(net: Network[str], until: int) -> list[tuple[int, int, int, str]]:
    out = []
    for now in range(until + 1):
        out.extend((now, src, dst, msg) for src, dst, msg in net.deliverable(now))
    return out


def test_reliable_network_delivers_each_message_once_next_tick_in_order() -> None:
    net, drops = _network(NetworkFaults())
    for n in range(5):
        net.send(1, 2, f"m{n}", now=0)
    assert _drain(net, 3) == [(1, 1, 2, f"m{n}") for n in range(5)]
    assert drops == [] and net.in_flight() == 0


def test_delay_reorders_messages_deterministically() -> None:
    def run(seed: int) -> list[str]:
        net, _ = _network(NetworkFaults(delay_ticks_max=6), seed)
        for n in range(40):
            net.send(1, 2, f"m{n}", now=0)
        return [msg for *_, msg in _drain(net, 10)]

    first = run(7)
    assert sorted(first) == sorted(f"m{n}" for n in range(40))
    assert first != [f"m{n}" for n in range(40)], "a 6-tick delay spread should reorder"
    assert run(7) == first


def test_loss_and_duplication() -> None:
    net, drops = _network(NetworkFaults(loss=0.3, duplication=0.3))
    for n in range(400):
        net.send(1, 2, f"m{n}", now=0)
    delivered = [msg for *_, msg in _drain(net, 2)]
    lost = {msg for why, _, _, msg in drops if why == "loss"}
    assert 60 < len(lost) < 180
    assert lost.isdisjoint(delivered)
    duplicated = len(delivered) - len(set(delivered))
    assert 40 < duplicated < 150
    assert set(delivered) | lost == {f"m{n}" for n in range(400)}


def test_split_cuts_both_directions_including_messages_in_flight() -> None:
    net, drops = _network(NetworkFaults())
    net.send(1, 3, "before", now=0)
    net.split([1, 2], [3])
    net.send(3, 1, "back", now=0)
    net.send(1, 2, "same side", now=0)
    assert _drain(net, 2) == [(1, 1, 2, "same side")]
    assert sorted(msg for *_, msg in drops) == ["back", "before"]
    net.heal()
    net.send(1, 3, "after", now=3)
    assert _drain(net, 4) == [(4, 1, 3, "after")]


def test_one_way_block_drops_only_that_direction() -> None:
    net, drops = _network(NetworkFaults())
    net.block(1, 2)
    net.send(1, 2, "lost", now=0)
    net.send(2, 1, "arrives", now=0)
    assert _drain(net, 1) == [(1, 2, 1, "arrives")]
    assert [(why, msg) for why, _, _, msg in drops] == [("partition", "lost")]
    assert net.is_blocked(1, 2) and not net.is_blocked(2, 1) and net.partitioned()
