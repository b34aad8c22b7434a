"""The deploy files stay in step with the server's flags (no Docker engine needed)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from triumvir.consensus.config import parse

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def test_compose_replicas_start_with_a_valid_configuration():
    text = (DEPLOY / "compose.yaml").read_text()
    environment = dict(re.findall(r'^\s+(TRIUMVIR_[A-Z_]+): "([^"]*)"', text, re.MULTILINE))
    commands = re.findall(r'command: \["serve", "consensus", (.*)\]', text)
    assert len(commands) == 3
    ids = set()
    for command in commands:
        argv = [part.strip().strip('"') for part in command.split(",")]
        config = parse(argv, environment)
        ids.add(config.node_id)
        assert config.peers[config.node_id].split(":")[0] == config.advertise.split(":")[0]
    assert ids == {1, 2, 3}


def test_dockerfile_generates_stubs_and_runs_the_cli():
    text = (DEPLOY / "Dockerfile").read_text()
    assert "grpc_tools.protoc" in text
    assert 'ENTRYPOINT ["triumvir"]' in text


def test_dockerfile_generates_stubs_with_the_grpc_tools_the_project_allows():
    # Stubs refuse to load under a grpcio older than the grpcio-tools that generated them,
    # so the image must generate them with a release inside the project's own bound.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    (tools,) = [d for d in project["optional-dependencies"]["dev"] if d.startswith("grpcio-tools")]
    (grpcio,) = [d for d in project["dependencies"] if d.startswith(("grpcio>", "grpcio<"))]
    assert "<" in tools, "grpcio-tools needs an upper bound matching grpcio's"
    assert tools.removeprefix("grpcio-tools") == grpcio.removeprefix("grpcio")
    assert f"'{tools}'" in (DEPLOY / "Dockerfile").read_text()
