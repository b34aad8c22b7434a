"""The revisioned key-value state machine every consensus replica applies from its log.

Pure and deterministic: no clock, no randomness, no I/O. The driver feeds it committed
entries through `KVStateMachine.apply` and serves reads from its query methods.
"""

from triumvir.consensus.kv.machine import ApplyResult, HashResult, KVStateMachine
from triumvir.consensus.kv.results import error_of, error_result
from triumvir.consensus.kv.sessions import CLIENT_IDLE_EXPIRY_MS
from triumvir.consensus.kv.store import MAX_EVENTS_PER_READ

__all__ = [
    "CLIENT_IDLE_EXPIRY_MS",
    "MAX_EVENTS_PER_READ",
    "ApplyResult",
    "HashResult",
    "KVStateMachine",
    "error_of",
    "error_result",
]
