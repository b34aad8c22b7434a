"""The one place where domain errors become gRPC statuses.

An UNAVAILABLE caused by "not the leader" carries a `triumvir.v1.LeaderHint` in the
standard rich error details (`grpc-status-details-bin`), so a client reaches the leader
in one hop.
"""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import status_pb2
from grpc_status import rpc_status

from triumvir.common.errors import TriumvirError, Unavailable
from triumvir.v1 import common_pb2


def to_status(error: TriumvirError) -> grpc.Status:
    code = getattr(grpc.StatusCode, error.code, grpc.StatusCode.UNKNOWN)
    detail = status_pb2.Status(code=code.value[0], message=error.message)
    if isinstance(error, Unavailable) and (error.leader_id or error.leader_address):
        hint = any_pb2.Any()
        hint.Pack(
            common_pb2.LeaderHint(leader_id=error.leader_id, leader_address=error.leader_address)
        )
        detail.details.append(hint)
    return rpc_status.to_status(detail)


def code_number(code_name: str) -> int:
    """grpc.StatusCode name -> wire number (as stored in replicated results)."""
    return getattr(grpc.StatusCode, code_name, grpc.StatusCode.UNKNOWN).value[0]


def code_name(number: int) -> str:
    for code in grpc.StatusCode:
        if code.value[0] == number:
            return code.name
    return "UNKNOWN"
