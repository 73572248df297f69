"""Prometheus configs and rules through Debian's promtool: syntax, unit tests of every alert, runbooks."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.ops.promql import OPERATIONS, ROOT, RULES, rules

PROMETHEUS = ROOT / "deploy/prometheus"
RULE_TESTS = sorted((PROMETHEUS / "tests").glob("*.yml"))
CONFIGS = sorted(PROMETHEUS.glob("prometheus.*.yml"))


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool is not installed (deploy/ci/tools.sh installs Debian's prometheus package)")
    return found


def run(*args: str | Path, cwd: Path = PROMETHEUS) -> str:
    done = subprocess.run([promtool(), *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def test_rule_files_are_valid() -> None:
    out = run("check", "rules", *RULES)
    assert out.count("SUCCESS") == len(RULES)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
def test_scrape_configs_are_valid(config: Path) -> None:
    assert "SUCCESS" in run("check", "config", config)


def test_alert_unit_tests_pass() -> None:
    out = run("test", "rules", *RULE_TESTS)
    assert out.count("SUCCESS") == len(RULE_TESTS)


def test_promtool_test_rules_can_fail(tmp_path: Path) -> None:
    """The unit tests prove something: a wrong expectation is reported as a failure."""
    broken = yaml.safe_load((PROMETHEUS / "tests/alerts_test.yml").read_text())
    broken["rule_files"] = [str(path) for path in RULES]
    broken["tests"] = broken["tests"][:1]
    broken["tests"][0]["alert_rule_test"][0]["exp_alerts"] = [{"exp_labels": {"severity": "none"}}]
    (tmp_path / "broken.yml").write_text(yaml.safe_dump(broken))
    done = subprocess.run([promtool(), "test", "rules", "broken.yml"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode != 0 and "FAILED" in done.stdout + done.stderr


def alerts() -> list[dict[str, object]]:
    return [rule for rule in rules() if "alert" in rule]


def test_every_alert_has_a_test_where_it_fires() -> None:
    fired: set[str] = set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            fired.update(check["alertname"] for check in case.get("alert_rule_test", []) if check["exp_alerts"])
    names = {str(rule["alert"]) for rule in alerts()}
    assert names, "no alerts found"
    assert names - fired == set(), f"alerts without a firing unit test: {sorted(names - fired)}"


def anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, spaces to dashes, punctuation dropped."""
    found = set()
    for heading in re.findall(r"^#+\s+(.+?)\s*$", markdown, re.MULTILINE):
        found.add(re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-"))
    return found


def test_every_alert_links_its_runbook_section() -> None:
    known = anchors(OPERATIONS.read_text())
    for rule in alerts():
        annotations = rule["annotations"]
        assert isinstance(annotations, dict)
        assert {"summary", "description", "runbook_url"} <= set(annotations), rule["alert"]
        page, _, anchor = str(annotations["runbook_url"]).partition("#")
        assert page == "docs/operations.md" and anchor == str(rule["alert"]).lower(), annotations["runbook_url"]
        assert anchor in known, f"docs/operations.md has no section for {rule['alert']}"
