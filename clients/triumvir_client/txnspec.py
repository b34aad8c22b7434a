"""The small line-based language `triumvir kv txn` reads a transaction from.

Three blocks separated by blank lines: compares, then the ops to run when every compare
holds, then the ops to run otherwise. See `SPEC_HELP` for the syntax.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass

from triumvir.v1 import kv_pb2
from triumvir_client import builders

# A transaction is one replicated entry; keep a typed-in spec well inside what a server
# accepts per request.
SPEC_LINES_MAX = 1024
BLOCKS_MAX = 3

SPEC_HELP = """\
transaction spec (read from stdin, or from --file):
  three blocks separated by one blank line each: compares, then the ops run when every
  compare holds, then the ops run otherwise. Any block may be empty (an empty first
  block is a leading blank line). Lines starting with '#' are ignored. Words are split
  like a shell's, so quote values that contain spaces.

  compares (OP is one of = != > <):
    value KEY OP VALUE      version KEY OP N      create KEY OP REV
    mod KEY OP REV          lease KEY OP LEASE_ID
  ops:
    put KEY VALUE [--lease ID]
    get KEY [--prefix | --range-end END]
    del KEY [--prefix | --range-end END]

  example: set "owner" only if it does not exist yet, else show who owns it
    version owner = 0

    put owner alice

    get owner
"""


class SpecError(ValueError):
    """The spec text is malformed; the message names the line."""


@dataclass(frozen=True, slots=True)
class TxnSpec:
    compare: tuple[kv_pb2.Compare, ...]
    success: tuple[kv_pb2.RequestOp, ...]
    failure: tuple[kv_pb2.RequestOp, ...]


_INT_COMPARES: dict[str, Callable[[str, str, int], kv_pb2.Compare]] = {
    "version": builders.compare_version,
    "create": builders.compare_create,
    "mod": builders.compare_mod,
    "lease": builders.compare_lease,
}


def parse(text: str) -> TxnSpec:
    lines = text.rstrip().splitlines()
    if len(lines) > SPEC_LINES_MAX:
        raise SpecError(f"the spec has {len(lines)} lines; at most {SPEC_LINES_MAX} are read")
    blocks: list[list[tuple[int, list[str]]]] = [[]]
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if stripped.startswith("#"):
            continue
        if not stripped:
            blocks.append([])
            if len(blocks) > BLOCKS_MAX:
                raise SpecError(f"line {number}: more than {BLOCKS_MAX} blocks")
            continue
        try:
            words = shlex.split(stripped)
        except ValueError as exc:
            raise SpecError(f"line {number}: {exc}") from None
        blocks[-1].append((number, words))
    blocks.extend([] for _ in range(BLOCKS_MAX - len(blocks)))
    compares, success, failure = blocks
    return TxnSpec(
        compare=tuple(_compare(number, words) for number, words in compares),
        success=tuple(_op(number, words) for number, words in success),
        failure=tuple(_op(number, words) for number, words in failure),
    )


def _compare(number: int, words: list[str]) -> kv_pb2.Compare:
    if len(words) != 4:
        raise SpecError(f"line {number}: a compare is TARGET KEY OP OPERAND, got {words!r}")
    target, key, op, operand = words
    if op not in builders.COMPARE_RESULTS:
        raise SpecError(f"line {number}: unknown operator {op!r} (use = != > <)")
    if target == "value":
        return builders.compare_value(key, op, operand)
    build = _INT_COMPARES.get(target)
    if build is None:
        raise SpecError(
            f"line {number}: unknown compare target {target!r} "
            "(use value, version, create, mod or lease)"
        )
    return build(key, op, _integer(number, operand))


def _op(number: int, words: list[str]) -> kv_pb2.RequestOp:
    verb, rest = words[0], words[1:]
    positional, flags = _split_flags(number, rest)
    if verb == "put":
        _expect(number, verb, positional, 2, set(flags) - {"--lease"})
        lease = _integer(number, flags["--lease"]) if "--lease" in flags else 0
        return builders.op_put(positional[0], positional[1], lease=lease)
    if verb in ("get", "del"):
        _expect(number, verb, positional, 1, set(flags) - {"--prefix", "--range-end"})
        prefix = "--prefix" in flags
        range_end = flags.get("--range-end", "")
        if prefix and range_end:
            raise SpecError(f"line {number}: give --prefix or --range-end, not both")
        if verb == "get":
            return builders.op_get(positional[0], range_end=range_end, prefix=prefix)
        return builders.op_delete(positional[0], range_end=range_end, prefix=prefix)
    raise SpecError(f"line {number}: unknown op {verb!r} (use put, get or del)")


def _split_flags(number: int, words: list[str]) -> tuple[list[str], dict[str, str]]:
    positional: list[str] = []
    flags: dict[str, str] = {}
    index = 0
    while index < len(words):
        word = words[index]
        if word == "--prefix":
            flags[word] = "yes"
        elif word in ("--lease", "--range-end"):
            if index + 1 >= len(words):
                raise SpecError(f"line {number}: {word} needs a value")
            index += 1
            flags[word] = words[index]
        elif word.startswith("--"):
            raise SpecError(f"line {number}: unknown option {word}")
        else:
            positional.append(word)
        index += 1
    return positional, flags


def _expect(number: int, verb: str, positional: list[str], count: int, extra: set[str]) -> None:
    if len(positional) != count:
        raise SpecError(f"line {number}: {verb} takes {count} argument(s), got {positional!r}")
    if extra:
        raise SpecError(f"line {number}: {verb} does not take {' '.join(sorted(extra))}")


def _integer(number: int, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise SpecError(f"line {number}: {text!r} is not an integer") from None
