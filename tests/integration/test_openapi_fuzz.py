"""Schemathesis against the live gateway of a real stack: every operation of /openapi.json, with the admin and
the platform key, must answer without a 5xx, with a documented status code, content type and body."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.stack import Stack

pytestmark = pytest.mark.integration
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
# Small and fixed, so CI is quick and reproducible; raise MARKSMAN_FUZZ_EXAMPLES for a deeper run.
MAX_EXAMPLES = int(os.environ.get("MARKSMAN_FUZZ_EXAMPLES", "5"))
SEED = int(os.environ.get("MARKSMAN_FUZZ_SEED", "20111209"))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    folder: Path = tmp_path_factory.mktemp("fuzz-stack")
    running = Stack(folder, ephemeral_ports=True, env={
        "MARKSMAN_AS_OF": "2011-12-10T00:00:00Z",
        "MARKSMAN_GATEWAY_UPSTREAM_TIMEOUT_S": "5",
    })
    running.start()
    yield running
    running.stop()


def schemathesis_run(
    stack: Stack, key: str, phases: str, examples: int, report: Path
) -> subprocess.CompletedProcess[str]:
    """`st run` over every operation, seeded and deterministic."""
    command = [
        sys.executable, "-m", "schemathesis.cli", "run", f"{stack.gateway_url}/openapi.json",
        "--header", f"Authorization: Bearer {key}",
        "--checks", CHECKS,
        "--phases", phases,
        "--max-examples", str(examples),
        "--seed", str(SEED), "--generation-deterministic",
        "--workers", "2",
        "--request-timeout", "30",
        "--suppress-health-check", "all",
        "--report", "junit", "--report-junit-path", str(report),
        "--no-color",
    ]
    # Run in the report's folder: schemathesis keeps a cache of past failures (.schemathesis/) in its working
    # directory and replays them, and CI must start from nothing.
    return subprocess.run(command, capture_output=True, text=True, timeout=600, check=False, cwd=report.parent)


# The admin key reaches every route, so its run is the deep one (the coverage phase's boundary and invalid
# values included); the platform key's run checks what it may do and that the rest is a documented 403.
@pytest.mark.parametrize(("scope", "phases", "examples"), [
    ("admin", "examples,coverage,fuzzing", MAX_EXAMPLES),
    ("platform", "examples,fuzzing", max(1, MAX_EXAMPLES // 2)),
])
def test_every_operation_answers_as_documented(
    stack: Stack, scope: str, phases: str, examples: int, tmp_path: Path
) -> None:
    report = tmp_path / f"schemathesis-{scope}.xml"
    result = schemathesis_run(stack, stack.api_keys()[scope], phases, examples, report)
    summary = result.stdout[result.stdout.find("=== FAILURES"):] if "FAILURES" in result.stdout else result.stdout
    assert result.returncode == 0, summary[-20_000:] + result.stderr[-2_000:]
    assert "Tested: " in result.stdout and report.exists(), result.stdout[-2_000:]
