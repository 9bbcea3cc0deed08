"""The Prometheus metrics: names, labels and values in the text exposition, diagnostics
counters across a node restart, fleet ages at scrape time, and the HTTP endpoint (a private
registry, a free port, shut down cleanly)."""
from __future__ import annotations

import math
import urllib.request

import pytest
from prometheus_client import REGISTRY

from wm_monitor.metrics import (DiagnosticCounters, MonitorMetrics, parse_diagnostic_counts,
                                parse_exposition)
from wm_monitor.prediction_error import StepResult


def result(err, kerr=0.02, inference=0.0004):
    s = (0.0, 0.0, 0.0, 0.5, 0.0)
    return StepResult(t0=1.0, t1=1.1, state0=s, action0=(0.5, 0.0), state1=s,
                      action1=(0.5, 0.0), payload=None, predicted=(0.0, 0.0, 0.0),
                      position_error=err, heading_error=0.01, kinematic_position_error=kerr,
                      kinematic_heading_error=0.02, inference_s=inference)


def value(samples, name, **labels):
    return samples[(name, tuple(sorted(labels.items())))]


def test_exposition_names_labels_and_values():
    clock = [100.0]
    m = MonitorMetrics("robot1", "worldmodel-1.0.0", clock=lambda: clock[0])
    text = m.exposition().decode()
    s = parse_exposition(text)
    # series exist before anything happened: rates and ratios are defined at once
    assert value(s, "wm_plan_cycles_total", robot="robot1", status="ok") == 0.0
    assert value(s, "wm_prediction_steps_total", robot="robot1") == 0.0
    assert value(s, "wm_monitor_info", robot="robot1", model_version="worldmodel-1.0.0") == 1
    assert math.isnan(value(s, "wm_fleet_snapshot_age_seconds", robot="robot1"))

    m.observe_step(result(0.03), 0.03, 0.02)
    m.observe_step(result(0.07), 0.05, 0.02)
    m.observe_step(result(float("nan")), 0.05, 0.02)   # unknown: not in the histogram
    m.observe_skipped("command_gap", 2)
    m.observe_fallbacks(3)
    m.observe_fallbacks(3)
    for status, solve in ((0, 0.012), (0, 0.045), (4, None), (1, None), (77, None)):
        m.observe_plan(status, solve, 0.05)
    m.observe_logged()
    m.observe_not_logged("overlapping")
    m.monitor_rejected("odom_invalid")
    clock[0] = 110.0
    m.observe_fleet(109.5, [108.0, 109.0])
    clock[0] = 111.0
    s = parse_exposition(m.exposition().decode())
    r = {"robot": "robot1"}
    wm = dict(r, model="world_model")
    assert value(s, "wm_prediction_error_meters_count", **wm) == 2
    assert value(s, "wm_prediction_error_meters_sum", **wm) == pytest.approx(0.10)
    assert value(s, "wm_prediction_error_meters_bucket", le="0.05", **wm) == 1
    assert value(s, "wm_prediction_error_meters_count", robot="robot1", model="kinematic") == 3
    assert value(s, "wm_prediction_error_mean_meters", **wm) == pytest.approx(0.05)
    assert value(s, "wm_prediction_steps_total", **r) == 3
    assert value(s, "wm_prediction_steps_skipped_total", reason="command_gap", **r) == 2
    assert value(s, "wm_world_model_fallbacks_total", **r) == 3
    assert value(s, "wm_model_inference_seconds_count", **r) == 3
    assert value(s, "wm_plan_cycles_total", status="ok", **r) == 2
    assert value(s, "wm_plan_cycles_total", status="failed", **r) == 1
    assert value(s, "wm_plan_cycles_total", status="unknown", **r) == 1
    assert value(s, "wm_plan_solve_seconds_count", **r) == 2
    assert value(s, "wm_plan_solve_seconds_bucket", le="0.03", **r) == 1
    assert value(s, "wm_plan_end_to_end_latency_seconds_count", **r) == 5
    assert value(s, "wm_fleet_snapshot_age_seconds", **r) == pytest.approx(1.5)
    assert value(s, "wm_fleet_neighbour_max_age_seconds", **r) == pytest.approx(3.0)
    assert value(s, "wm_fleet_neighbours", **r) == 2
    assert value(s, "wm_transitions_logged_total", **r) == 1
    assert value(s, "wm_transitions_not_logged_total", reason="overlapping", **r) == 1
    assert value(s, "wm_monitor_rejected_messages_total", reason="odom_invalid", **r) == 1
    # every metric is wm_-prefixed and labelled with the robot
    for (name, labels), _ in s.items():
        assert name.startswith("wm_") and dict(labels)["robot"] == "robot1", name
    # an older snapshot than the newest changes nothing; an empty one has no oldest entry
    m.observe_fleet(105.0, [])
    s = parse_exposition(m.exposition().decode())
    assert value(s, "wm_fleet_snapshot_age_seconds", **r) == pytest.approx(1.5)
    m.observe_fleet(110.5, [])
    s = parse_exposition(m.exposition().decode())
    assert math.isnan(value(s, "wm_fleet_neighbour_max_age_seconds", **r))


def test_diagnostic_counters_survive_a_node_restart():
    m = MonitorMetrics("robot1")
    node = "/robot1/planner"
    assert m.observe_diagnostics(node, 1, {"rejected.odom_stale": "3", "steps": "x"}) == []
    m.observe_diagnostics(node, 1, {"rejected.odom_stale": "5"})
    m.observe_diagnostics(node, 0, {"rejected.odom_stale": "2"})    # restarted: 2 new ones
    bad = m.observe_diagnostics(node, 9, {"rejected.x": "abc", "rejected.y": "-1"})
    assert sorted(bad) == ["level", "rejected.x", "rejected.y"]
    s = parse_exposition(m.exposition().decode())
    assert value(s, "wm_node_rejected_messages_total", robot="robot1", node=node,
                 reason="odom_stale") == 7
    assert value(s, "wm_node_diagnostic_level", robot="robot1", node=node) == 0
    c = DiagnosticCounters()
    assert [c.update("n", "r", v) for v in (4, 4, 6, 1, 3)] == [4, 0, 2, 1, 2]
    assert parse_diagnostic_counts({"rejected.a": "1", "other": "2"}) == ({"a": 1}, [])


def test_http_endpoint_private_registry_and_shutdown():
    a = MonitorMetrics("robot1")
    b = MonitorMetrics("robot2")      # a second registry in one process: no clash
    port = a.serve("127.0.0.1", 0)
    try:
        a.observe_plan(0, 0.01, 0.02)
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as resp:
            assert resp.status == 200
            text = resp.read().decode()
        s = parse_exposition(text)
        assert value(s, "wm_plan_cycles_total", robot="robot1", status="ok") == 1
        assert not any(k[0].startswith("wm_") and dict(k[1]).get("robot") == "robot2"
                       for k in s)
        assert REGISTRY.get_sample_value("wm_plan_cycles_total",
                                         {"robot": "robot1", "status": "ok"}) is None
    finally:
        a.shutdown()
    with pytest.raises(OSError):
        urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=2)
    # the port is free again
    port2 = b.serve("127.0.0.1", port)
    assert port2 == port
    b.shutdown()
