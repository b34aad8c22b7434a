"""Key ranges as the KV API spells them: a key alone, `[key, range_end)`, or every key >= key."""

from __future__ import annotations

from bisect import bisect_left

from triumvir.common.errors import InvalidArgument

ALL_KEYS_FROM = b"\0"
"""A `range_end` of a single zero byte means "every key >= key" (as in etcd)."""


def require_key(key: bytes) -> None:
    if not key:
        raise InvalidArgument("key is not provided")


def contains(key: bytes, start: bytes, range_end: bytes) -> bool:
    """Whether `key` falls in the range named by (`start`, `range_end`)."""
    if not range_end:
        return key == start
    if range_end == ALL_KEYS_FROM:
        return key >= start
    return start <= key < range_end


def index_bounds(sorted_keys: list[bytes], start: bytes, range_end: bytes) -> tuple[int, int]:
    """Slice `[lo, hi)` of `sorted_keys` holding the keys in the range, in O(log n)."""
    lo = bisect_left(sorted_keys, start)
    if not range_end:
        found = lo < len(sorted_keys) and sorted_keys[lo] == start
        return lo, lo + 1 if found else lo
    if range_end == ALL_KEYS_FROM:
        return lo, len(sorted_keys)
    if range_end <= start:
        return lo, lo
    return lo, bisect_left(sorted_keys, range_end, lo)
