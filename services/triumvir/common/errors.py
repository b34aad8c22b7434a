"""Domain errors shared by every service, each naming the gRPC status it maps to.

Domain code raises these; one place (`triumvir.common.status`) turns them into gRPC
statuses. The code names are plain strings so pure modules (state machines, cores) can
raise them without importing grpc.
"""

from __future__ import annotations


class TriumvirError(Exception):
    """Base class. `code` is the name of a grpc.StatusCode member."""

    code = "UNKNOWN"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(TriumvirError):
    code = "INVALID_ARGUMENT"


class FailedPrecondition(TriumvirError):
    code = "FAILED_PRECONDITION"


class NotFound(TriumvirError):
    code = "NOT_FOUND"


class AlreadyExists(TriumvirError):
    code = "ALREADY_EXISTS"


class OutOfRange(TriumvirError):
    code = "OUT_OF_RANGE"


class Compacted(OutOfRange):
    """The requested revision is older than the compaction point."""


class FutureRevision(OutOfRange):
    """The requested revision has not been written yet."""


class ResourceExhausted(TriumvirError):
    code = "RESOURCE_EXHAUSTED"


class DeadlineExceeded(TriumvirError):
    """The outcome is unknown: the request may still take effect."""

    code = "DEADLINE_EXCEEDED"


class Unavailable(TriumvirError):
    """This replica cannot serve the request now; `leader_id`/`leader_address` say where to go."""

    code = "UNAVAILABLE"

    def __init__(self, message: str, *, leader_id: int = 0, leader_address: str = "") -> None:
        super().__init__(message)
        self.leader_id = leader_id
        self.leader_address = leader_address


class Internal(TriumvirError):
    code = "INTERNAL"


ERRORS_BY_CODE: dict[str, type[TriumvirError]] = {
    cls.code: cls
    for cls in (
        InvalidArgument,
        FailedPrecondition,
        NotFound,
        AlreadyExists,
        OutOfRange,
        ResourceExhausted,
        DeadlineExceeded,
        Unavailable,
        Internal,
    )
}


def error_from_code(code: str, message: str) -> TriumvirError:
    """Rebuild a domain error from a stored (code, message) pair, e.g. a replicated result."""
    return ERRORS_BY_CODE.get(code, TriumvirError)(message)
