"""How `triumvir` prints results: readable text, or one JSON object per result.

JSON follows the Protobuf JSON mapping (as grpcurl prints it): field names as in the
.proto files, bytes as base64, 64-bit integers as strings.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TextIO

from google.protobuf import json_format
from google.protobuf.message import Message

from triumvir.v1 import cluster_pb2, common_pb2, kv_pb2
from triumvir_client.snapshots import SnapshotInfo

OUTPUTS = ("text", "json")


def text(data: bytes) -> str:
    """Keys and values are shown as UTF-8; undecodable bytes are escaped, never dropped."""
    return data.decode("utf-8", errors="backslashreplace")


def as_dict(message: Message) -> dict[str, object]:
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


class Printer:
    def __init__(self, output: str, stream: TextIO) -> None:
        if output not in OUTPUTS:
            raise ValueError(f"--output must be one of {', '.join(OUTPUTS)}")
        self.json = output == "json"
        self._stream = stream

    def line(self, value: str = "") -> None:
        self._stream.write(value + "\n")

    def message(self, message: Message) -> None:
        self.obj(as_dict(message))

    def obj(self, value: object) -> None:
        self.line(json.dumps(value, sort_keys=True))

    def flush(self) -> None:
        self._stream.flush()

    # -- KV ------------------------------------------------------------------------------

    def key_values(self, kvs: Sequence[common_pb2.KeyValue], *, keys_only: bool = False) -> None:
        for kv in kvs:
            self.line(text(kv.key))
            if not keys_only:
                self.line(text(kv.value))

    def range_response(
        self, response: kv_pb2.RangeResponse, *, keys_only: bool, count_only: bool
    ) -> None:
        if self.json:
            self.message(response)
        elif count_only:
            self.line(str(response.count))
        else:
            self.key_values(response.kvs, keys_only=keys_only)

    def put_response(self, response: kv_pb2.PutResponse) -> None:
        if self.json:
            self.message(response)
            return
        self.line("OK")
        if response.HasField("prev_kv"):
            self.key_values([response.prev_kv])

    def delete_response(self, response: kv_pb2.DeleteRangeResponse) -> None:
        if self.json:
            self.message(response)
            return
        self.line(str(response.deleted))
        self.key_values(response.prev_kvs)

    def txn_response(self, response: kv_pb2.TxnResponse) -> None:
        if self.json:
            self.message(response)
            return
        self.line("SUCCESS" if response.succeeded else "FAILURE")
        for op in response.responses:
            self.line()
            kind = op.WhichOneof("response")
            if kind == "response_range":
                self.key_values(op.response_range.kvs)
            elif kind == "response_put":
                self.put_response(op.response_put)
            elif kind == "response_delete_range":
                self.delete_response(op.response_delete_range)
            elif kind == "response_txn":
                self.txn_response(op.response_txn)

    def event(self, event: common_pb2.Event) -> None:
        if self.json:
            self.message(event)
        else:
            self.line(common_pb2.Event.EventType.Name(event.type))
            self.line(text(event.kv.key))
            if event.type == common_pb2.Event.PUT:
                self.line(text(event.kv.value))
        self.flush()

    # -- cluster -------------------------------------------------------------------------

    def members(self, members: Sequence[common_pb2.Member]) -> None:
        rows = [
            [
                str(member.id),
                member.name or "-",
                ",".join(member.peer_urls) or "-",
                ",".join(member.client_urls) or "-",
                "true" if member.is_learner else "false",
            ]
            for member in members
        ]
        self.table(["ID", "NAME", "PEER_URLS", "CLIENT_URLS", "LEARNER"], rows)

    def statuses(self, results: Sequence[tuple[str, cluster_pb2.StatusResponse | str]]) -> None:
        """One row per endpoint; a string in place of a response is that endpoint's error."""
        if self.json:
            for endpoint, result in results:
                if isinstance(result, str):
                    self.obj({"endpoint": endpoint, "error": result})
                else:
                    self.obj({"endpoint": endpoint, "status": as_dict(result)})
            return
        rows = []
        for endpoint, result in results:
            if isinstance(result, str):
                rows.append([endpoint, "-", "-", "-", "-", "-", "-", "-", "-", result])
                continue
            rows.append(
                [
                    endpoint,
                    str(result.header.member_id),
                    cluster_pb2.StatusResponse.Engine.Name(result.engine).lower(),
                    cluster_pb2.StatusResponse.Role.Name(result.role).lower(),
                    str(result.leader_id),
                    str(result.raft_term),
                    str(result.commit_index),
                    str(result.applied_index),
                    str(result.db_size_bytes),
                    "; ".join(result.errors) or "-",
                ]
            )
        header = [
            "ENDPOINT",
            "ID",
            "ENGINE",
            "ROLE",
            "LEADER",
            "TERM",
            "COMMIT",
            "APPLIED",
            "DB_BYTES",
            "ERRORS",
        ]
        self.table(header, rows)

    def table(self, header: list[str], rows: list[list[str]]) -> None:
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
            self.line("  ".join(cells).rstrip())

    # -- maintenance ---------------------------------------------------------------------

    def snapshot(self, info: SnapshotInfo) -> None:
        if self.json:
            self.obj(
                {
                    "path": info.path,
                    "size_bytes": info.size_bytes,
                    "sha256": info.sha256_hex,
                    "revision": info.revision,
                    "member_id": info.member_id,
                }
            )
        else:
            self.line(
                f"snapshot saved to {info.path}: {info.size_bytes} bytes, revision "
                f"{info.revision} from member {info.member_id}, sha256 {info.sha256_hex}"
            )
