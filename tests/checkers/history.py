"""Jepsen-style records of client operations against a key-value register.

A workload calls `invoke` just before it sends a request and exactly one of `ok`, `fail` or
`info` once it knows the outcome. `fail` means the operation definitely did not take effect;
`info` means nobody knows (a timeout, a crash), so a checker must allow both. Checkers read
the record back as raw events or as invocations paired with their completions.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Literal, get_args

Kind = Literal["invoke", "ok", "fail", "info"]
Status = Literal["ok", "fail", "info", "open"]

KINDS: frozenset[str] = frozenset(get_args(Kind))
_EVENT_FIELDS: tuple[str, ...] = ("kind", "process", "op_id", "f", "key", "value", "time")


@dataclass(frozen=True, slots=True)
class Event:
    kind: Kind
    process: int
    op_id: int
    f: str
    key: str
    value: object
    time: int


@dataclass(frozen=True, slots=True)
class Operation:
    """One invocation paired with its completion, if it has one."""

    op_id: int
    process: int
    f: str
    key: str
    value: object  # the argument given at invoke time
    status: Status
    result: object  # what an ok completion returned; None for every other status
    invoke_time: int
    complete_time: int | None  # None while the operation is still open

    def describe(self) -> str:
        """A one-line rendering for failure messages."""
        end = "?" if self.complete_time is None else str(self.complete_time)
        if self.status == "ok":
            outcome = "ok" if self.f == "put" else f"-> {self.result!r}"
        else:
            outcome = self.status
        return (
            f"op {self.op_id} (process {self.process}) {self.f} {self.key!r} "
            f"{self.value!r} {outcome} [{self.invoke_time}, {end}]"
        )


class History:
    """An append-only record of events, safe to share between recording threads.

    A process runs one operation at a time, as in Jepsen: it may invoke again only after its
    previous operation completed (with any of ok, fail or info).
    """

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._invokes: dict[int, Event] = {}
        # invariant: every op_id in _open is a key of _invokes with no completion recorded
        self._open: set[int] = set()
        self._busy: dict[int, int] = {}  # process -> its open op_id
        self._next_op_id = 0
        self._lock = threading.Lock()

    def invoke(self, process: int, f: str, key: str, value: object, time: int) -> int:
        with self._lock:
            op_id = self._next_op_id
            self._append(Event("invoke", process, op_id, f, key, value, time))
            return op_id

    def ok(self, op_id: int, value: object, time: int) -> None:
        with self._lock:
            self._append(self._completion("ok", op_id, value, time))

    def fail(self, op_id: int, time: int) -> None:
        with self._lock:
            self._append(self._completion("fail", op_id, None, time))

    def info(self, op_id: int, time: int) -> None:
        with self._lock:
            self._append(self._completion("info", op_id, None, time))

    def operations(self) -> list[Operation]:
        """Every invocation in recording order, paired with its completion."""
        with self._lock:
            completions = {e.op_id: e for e in self.events if e.kind != "invoke"}
            ops: list[Operation] = []
            for inv in self._invokes.values():
                done = completions.get(inv.op_id)
                ops.append(
                    Operation(
                        op_id=inv.op_id,
                        process=inv.process,
                        f=inv.f,
                        key=inv.key,
                        value=inv.value,
                        status="open" if done is None else done.kind,  # type: ignore[arg-type]
                        result=done.value if done is not None and done.kind == "ok" else None,
                        invoke_time=inv.time,
                        complete_time=None if done is None else done.time,
                    )
                )
            return ops

    def to_jsonl(self) -> str:
        with self._lock:
            lines = [
                json.dumps(
                    {
                        "kind": e.kind,
                        "process": e.process,
                        "op_id": e.op_id,
                        "f": e.f,
                        "key": e.key,
                        "value": _encode(e.value),
                        "time": e.time,
                    },
                    separators=(",", ":"),
                )
                for e in self.events
            ]
        return "".join(line + "\n" for line in lines)

    @classmethod
    def from_jsonl(cls, text: str) -> History:
        history = cls()
        for line_no, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                history._append(_event_from_json(json.loads(line)))
            except (ValueError, TypeError, KeyError) as err:
                raise ValueError(f"line {line_no}: {err}") from err
        return history

    def _completion(self, kind: Kind, op_id: int, value: object, time: int) -> Event:
        inv = self._invokes.get(op_id)
        if inv is None or op_id not in self._open:
            raise ValueError(f"op {op_id} is not open (never invoked or already completed)")
        # Jepsen keeps the invoke's argument on fail/info so the record stays self-describing.
        recorded = value if kind == "ok" else inv.value
        return Event(kind, inv.process, op_id, inv.f, inv.key, recorded, time)

    def _append(self, event: Event) -> None:
        if event.kind == "invoke":
            if event.op_id in self._invokes:
                raise ValueError(f"op {event.op_id} invoked twice")
            if event.process in self._busy:
                raise ValueError(
                    f"process {event.process} invoked op {event.op_id} while its op "
                    f"{self._busy[event.process]} is still open"
                )
            self._invokes[event.op_id] = event
            self._open.add(event.op_id)
            self._busy[event.process] = event.op_id
            self._next_op_id = max(self._next_op_id, event.op_id + 1)
        else:
            inv = self._invokes.get(event.op_id)
            if inv is None or event.op_id not in self._open:
                raise ValueError(f"op {event.op_id} completed but is not open")
            if (event.process, event.f, event.key) != (inv.process, inv.f, inv.key):
                raise ValueError(f"op {event.op_id} completion does not match its invoke")
            if event.time < inv.time:
                raise ValueError(
                    f"op {event.op_id} completed at {event.time}, before its invoke at {inv.time}"
                )
            self._open.discard(event.op_id)
            del self._busy[inv.process]
        self.events.append(event)


def _event_from_json(obj: object) -> Event:
    if not isinstance(obj, dict) or set(obj) != set(_EVENT_FIELDS):
        raise ValueError(f"expected an object with fields {_EVENT_FIELDS}")
    kind = obj["kind"]
    if kind not in KINDS:
        raise ValueError(f"unknown event kind {kind!r}")
    for field in ("process", "op_id", "time"):
        if type(obj[field]) is not int:
            raise ValueError(f"{field} must be an integer")
    if not isinstance(obj["f"], str) or not isinstance(obj["key"], str):
        raise ValueError("f and key must be strings")
    return Event(
        kind=kind,
        process=obj["process"],
        op_id=obj["op_id"],
        f=obj["f"],
        key=obj["key"],
        value=_decode(obj["value"]),
        time=obj["time"],
    )


# JSON has no tuples or bytes, and a cas argument is a tuple, so those travel inside a
# one-field tagging object. Every JSON object in an encoded value is such a tag.
def _encode(value: object) -> object:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, tuple):
        return {"tuple": [_encode(v) for v in value]}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, bytes):
        return {"bytes": value.hex()}
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"dict": {k: _encode(v) for k, v in value.items()}}
    raise TypeError(f"cannot record a value of type {type(value).__name__}")


def _decode(value: object) -> object:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, dict):
        if len(value) != 1:
            raise ValueError(f"malformed tagged value {value!r}")
        ((tag, body),) = value.items()
        if tag == "tuple" and isinstance(body, list):
            return tuple(_decode(v) for v in body)
        if tag == "bytes" and isinstance(body, str):
            return bytes.fromhex(body)
        if tag == "dict" and isinstance(body, dict):
            return {k: _decode(v) for k, v in body.items()}
        raise ValueError(f"malformed tagged value {value!r}")
    return value
