"""The deploy files stay in step with the server's flags (no Docker engine needed)."""

from __future__ import annotations

import re
from pathlib import Path

from triumvir.consensus.config import parse

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


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
