"""The real grpcurl binary against a real 3-replica group, through server reflection only."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.cluster import LocalCluster

GRPCURL = shutil.which("grpcurl") or str(Path(sys.executable).with_name("grpcurl"))


def grpcurl(*args: str) -> str:
    result = subprocess.run(
        [GRPCURL, "-plaintext", "-max-time", "10", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, f"grpcurl {' '.join(args)} failed: {result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, engine: str):
    group = LocalCluster(tmp_path_factory.mktemp("grpcurl"), engine=engine)
    group.start()
    try:
        group.wait_leader()
        yield group
    finally:
        group.stop()


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_grpcurl_lists_every_public_service_through_reflection(cluster: LocalCluster) -> None:
    services = set(grpcurl(cluster.endpoints()[0], "list").split())
    assert {
        "triumvir.v1.KV",
        "triumvir.v1.Watch",
        "triumvir.v1.Lease",
        "triumvir.v1.Cluster",
        "triumvir.v1.Maintenance",
        "grpc.health.v1.Health",
    } <= services


def test_grpcurl_describes_put_request(cluster: LocalCluster) -> None:
    described = grpcurl(cluster.endpoints()[0], "describe", "triumvir.v1.PutRequest")
    assert "bytes key" in described and "bytes value" in described


def test_grpcurl_put_then_range_returns_the_value(cluster: LocalCluster) -> None:
    for endpoint in cluster.endpoints():  # any replica: followers forward writes
        key, value = f"greeting-{endpoint}", "hello from grpcurl"
        put = json.loads(
            grpcurl(
                "-d",
                json.dumps({"key": b64(key), "value": b64(value)}),
                endpoint,
                "triumvir.v1.KV/Put",
            )
        )
        assert int(put["header"]["revision"]) > 0
        got = json.loads(
            grpcurl("-d", json.dumps({"key": b64(key)}), endpoint, "triumvir.v1.KV/Range")
        )
        assert [base64.b64decode(kv["value"]).decode() for kv in got["kvs"]] == [value]


def test_grpcurl_health_reports_serving(cluster: LocalCluster) -> None:
    reply = json.loads(grpcurl(cluster.endpoints()[1], "grpc.health.v1.Health/Check"))
    assert reply["status"] == "SERVING"


def test_grpcurl_shows_a_clear_error_for_an_empty_key(cluster: LocalCluster) -> None:
    result = subprocess.run(
        [
            GRPCURL,
            "-plaintext",
            "-d",
            json.dumps({"value": b64("x")}),
            cluster.endpoints()[0],
            "triumvir.v1.KV/Put",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert "InvalidArgument" in result.stderr and "key is empty" in result.stderr
