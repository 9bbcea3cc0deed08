"""The Prometheus alert rules (config/monitoring/alerts.yml): valid (promtool check rules),
their unit tests pass (promtool test rules alerts_test.yml: input series that fire and do not
fire each alert), the example scrape configuration is valid, and every wm_* metric they use is
one the monitor node exports. promtool comes with Debian's `prometheus` package (make test's
set-up installs it); without it these tests fail rather than skip."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import yaml

from wm_monitor.metrics import MonitorMetrics

MONITORING = Path(__file__).resolve().parent.parent / "config" / "monitoring"
RULES = MONITORING / "alerts.yml"


def promtool() -> str:
    path = shutil.which("promtool") or ("/usr/bin/promtool"
                                        if Path("/usr/bin/promtool").exists() else None)
    assert path, ("promtool not found: apt-get install prometheus (scripts/setup.sh does) "
                  "- the alert rules cannot be checked without it")
    return path


def run(*args: str) -> str:
    p = subprocess.run([promtool(), *args], cwd=MONITORING, capture_output=True, text=True,
                       timeout=120)
    out = p.stdout + p.stderr
    assert p.returncode == 0, out
    return out


def test_rules_are_valid():
    out = run("check", "rules", str(RULES))
    assert "SUCCESS" in out


def test_rule_unit_tests_pass():
    out = run("test", "rules", "alerts_test.yml")
    assert "SUCCESS" in out and "FAILED" not in out


def test_example_scrape_config_is_valid():
    out = run("check", "config", "prometheus.yml")
    assert "SUCCESS" in out


def rules():
    doc = yaml.safe_load(RULES.read_text())
    return [r for g in doc["groups"] for r in g["rules"]]


def test_every_alert_is_tested_firing_and_not_firing():
    tests = yaml.safe_load((MONITORING / "alerts_test.yml").read_text())["tests"]
    fired, quiet = set(), set()
    for t in tests:
        for a in t.get("alert_rule_test", []):
            (fired if a.get("exp_alerts") else quiet).add(a["alertname"])
    alerts = {r["alert"] for r in rules() if "alert" in r}
    assert alerts <= fired, "never seen firing: %s" % sorted(alerts - fired)
    assert alerts <= quiet, "never seen quiet: %s" % sorted(alerts - quiet)
    product = next(r for r in rules() if r.get("alert") == "WorldModelPredictionErrorHigh")
    assert product["labels"]["severity"] == "critical" and product["for"] == "2m"
    assert "[5m]" in product["expr"] and "> 0.05" in product["expr"]


def test_rules_use_only_metrics_the_monitor_exports():
    m = MonitorMetrics("robot1")
    m.observe_skipped("x")
    m.observe_not_logged("x")
    m.monitor_rejected("x")
    m.observe_diagnostics("/robot1/planner", 0, {"rejected.x": "1"})
    exported = {s.name for fam in m.registry.collect() for s in fam.samples}
    used = set()
    for r in rules():
        expr = re.sub(r'"[^"]*"', '""', r["expr"])   # not label values (job="wm_monitor")
        used |= set(re.findall(r"\bwm_[a-z0-9_]+", expr))
    assert used, "no wm_ metric in the rules?"
    assert used <= exported, "not exported by wm_monitor: %s" % sorted(used - exported)
