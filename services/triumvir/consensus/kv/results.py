"""Rejected commands as data: a replicated command that fails must fail the same way on
every replica, so the error travels inside the CommandResult instead of as an exception.
"""

from __future__ import annotations

from triumvir.common.errors import TriumvirError, error_from_code
from triumvir.v1.command_pb2 import CommandResult

GRPC_CODE_NUMBERS: dict[str, int] = {
    "OK": 0,
    "CANCELLED": 1,
    "UNKNOWN": 2,
    "INVALID_ARGUMENT": 3,
    "DEADLINE_EXCEEDED": 4,
    "NOT_FOUND": 5,
    "ALREADY_EXISTS": 6,
    "PERMISSION_DENIED": 7,
    "RESOURCE_EXHAUSTED": 8,
    "FAILED_PRECONDITION": 9,
    "ABORTED": 10,
    "OUT_OF_RANGE": 11,
    "UNIMPLEMENTED": 12,
    "INTERNAL": 13,
    "UNAVAILABLE": 14,
    "DATA_LOSS": 15,
    "UNAUTHENTICATED": 16,
}
"""gRPC status code numbers by name (fixed by the gRPC spec), so pure code needs no grpc."""

GRPC_CODE_NAMES: dict[int, str] = {number: name for name, number in GRPC_CODE_NUMBERS.items()}


def error_result(error: TriumvirError) -> CommandResult:
    code = GRPC_CODE_NUMBERS.get(error.code, GRPC_CODE_NUMBERS["UNKNOWN"])
    return CommandResult(error=CommandResult.Status(code=code, message=error.message))


def error_of(result: CommandResult) -> TriumvirError | None:
    """The domain error a result carries, or None when the command succeeded."""
    if result.WhichOneof("result") != "error":
        return None
    name = GRPC_CODE_NAMES.get(result.error.code, "UNKNOWN")
    return error_from_code(name, result.error.message)
