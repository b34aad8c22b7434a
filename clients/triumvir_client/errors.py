"""Exceptions raised by the client, each carrying the gRPC status code and message.

Callers catch the subclass for the case they handle (`NotFound`, `OutcomeUnknown`, ...)
or the base `ClientError` for everything; `str(error)` reads `CODE: message`.
"""

from __future__ import annotations

import grpc


class ClientError(Exception):
    """A request failed; `code` is the gRPC status, `message` the server's explanation."""

    default_code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str, *, code: grpc.StatusCode | None = None) -> None:
        self.code: grpc.StatusCode = code if code is not None else self.default_code
        self.message = message
        super().__init__(f"{self.code.name}: {message}")


class InvalidArgument(ClientError):
    default_code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(ClientError):
    default_code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(ClientError):
    default_code = grpc.StatusCode.ALREADY_EXISTS


class FailedPrecondition(ClientError):
    default_code = grpc.StatusCode.FAILED_PRECONDITION


class OutOfRange(ClientError):
    default_code = grpc.StatusCode.OUT_OF_RANGE


class ResourceExhausted(ClientError):
    default_code = grpc.StatusCode.RESOURCE_EXHAUSTED


class PermissionDenied(ClientError):
    default_code = grpc.StatusCode.PERMISSION_DENIED


class Unauthenticated(ClientError):
    default_code = grpc.StatusCode.UNAUTHENTICATED


class Unavailable(ClientError):
    """No member could serve the request within the retry budget."""

    default_code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceeded(ClientError):
    """A read ran out of time. (A write that runs out of time raises `OutcomeUnknown`.)"""

    default_code = grpc.StatusCode.DEADLINE_EXCEEDED


class OutcomeUnknown(ClientError):
    """A write timed out on every attempt: it may or may not have been applied.

    Retrying the same call creates a new write; read the key to learn what happened.
    """

    default_code = grpc.StatusCode.DEADLINE_EXCEEDED


class Cancelled(ClientError):
    default_code = grpc.StatusCode.CANCELLED


class Internal(ClientError):
    default_code = grpc.StatusCode.INTERNAL


class WatchCompacted(OutOfRange):
    """The watch asked for history that was compacted away.

    `compact_revision` is the oldest revision still available; watch again from it and
    read the current state with `get` to fill the gap.
    """

    def __init__(self, message: str, *, compact_revision: int) -> None:
        super().__init__(message)
        self.compact_revision = compact_revision


class WatchCanceled(ClientError):
    """The server ended the watch for a reason other than compaction (e.g. a bad range)."""

    default_code = grpc.StatusCode.CANCELLED


class SnapshotCorrupt(ClientError):
    """The streamed snapshot did not match the SHA-256 the server sent at its end."""

    default_code = grpc.StatusCode.DATA_LOSS


_BY_CODE: dict[grpc.StatusCode, type[ClientError]] = {
    cls.default_code: cls
    for cls in (
        InvalidArgument,
        NotFound,
        AlreadyExists,
        FailedPrecondition,
        OutOfRange,
        ResourceExhausted,
        PermissionDenied,
        Unauthenticated,
        Unavailable,
        DeadlineExceeded,
        Cancelled,
        Internal,
    )
}


def from_status(code: grpc.StatusCode, message: str) -> ClientError:
    """The exception for a gRPC status; codes without a subclass use `ClientError`."""
    cls = _BY_CODE.get(code, ClientError)
    return cls(message, code=code)
