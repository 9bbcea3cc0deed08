"""The robot's Prometheus metrics (prometheus_client, a private CollectorRegistry) and the HTTP
endpoint that serves them. Every metric is named `wm_*` and carries a `robot` label.

| metric | type | labels | what |
|---|---|---|---|
| `wm_monitor_info` | gauge (1) | model_version | the measured model |
| `wm_prediction_error_meters` | histogram | model | one-step position error vs localization |
| `wm_prediction_heading_error_radians` | histogram | model | one-step heading error |
| `wm_prediction_error_mean_meters` | gauge | model | rolling mean over `window` |
| `wm_prediction_steps_total` | counter | | steps evaluated |
| `wm_prediction_steps_skipped_total` | counter | reason | steps not evaluated, why |
| `wm_world_model_fallbacks_total` | counter | | predictions the model's guard refused |
| `wm_model_inference_seconds` | histogram | | the monitor's one-step prediction time |
| `wm_plan_cycles_total` | counter | status | planner cycles (PlanStatus) by outcome |
| `wm_plan_solve_seconds` | histogram | | plan latency: PlanStatus.solve_time_ms |
| `wm_plan_end_to_end_latency_seconds` | histogram | | input_stamp -> plan status received |
| `wm_fleet_snapshot_age_seconds` | gauge | | age of the newest fleet/neighbours snapshot |
| `wm_fleet_neighbour_max_age_seconds` | gauge | | age of its oldest neighbour entry |
| `wm_fleet_neighbours` | gauge | | neighbours in the newest snapshot |
| `wm_node_rejected_messages_total` | counter | node, reason | `rejected.<reason>` of /diagnostics |
| `wm_node_diagnostic_level` | gauge | node | 0 OK, 1 WARN, 2 ERROR, 3 STALE |
| `wm_transitions_logged_total` | counter | | high-error segments written to MCAP |
| `wm_transitions_not_logged_total` | counter | reason | overlapping, too_large, write_error |
| `wm_monitor_rejected_messages_total` | counter | reason | the monitor's own rejected input |

`model` is `world_model` (the measured model; the kinematic one when no artifact is set) or
`kinematic` (the unicycle with the command, for comparison). Ages are computed at scrape time
on the node's clock; NaN until a snapshot arrived (no fleet client: no alert).

Plain Python + prometheus_client, no rclpy; Python 3.8.
"""
from __future__ import annotations

import math
import threading
import time
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

PLAN_STATUS = {0: "ok", 1: "idle", 2: "goal_reached", 3: "stale_inputs", 4: "failed",
               5: "no_transform"}
MODELS = ("world_model", "kinematic")

ERROR_BUCKETS = (0.0025, 0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3,
                 0.5, 1.0)
HEADING_BUCKETS = (0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
INFERENCE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1)
# 0.03 is the planner's budget: the p99 alert compares against a bucket boundary
SOLVE_BUCKETS = (0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.075,
                 0.1, 0.25, 0.5)
LATENCY_BUCKETS = (0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0)


class DiagnosticCounters:
    """Monotonic totals of the cumulative `rejected.<reason>` counts nodes publish: a count
    that went down means the node restarted, and its new count is all new."""

    def __init__(self):
        self._last: Dict[Tuple[str, str], int] = {}

    def update(self, node: str, reason: str, value: int) -> int:
        """The increase since the last report of (node, reason)."""
        last = self._last.get((node, reason))
        self._last[(node, reason)] = value
        if last is None or value < last:
            return value
        return value - last


def parse_diagnostic_counts(values: Mapping[str, str]) -> Tuple[Dict[str, int], List[str]]:
    """({reason: count} of the `rejected.<reason>` keys, [keys with unusable values])."""
    counts: Dict[str, int] = {}
    bad: List[str] = []
    for key, value in values.items():
        if not key.startswith("rejected."):
            continue
        reason = key[len("rejected."):]
        try:
            n = int(value)
        except (TypeError, ValueError):
            bad.append(key)
            continue
        if n < 0 or not reason or len(reason) > 100:
            bad.append(key)
            continue
        counts[reason] = n
    return counts, bad


class MonitorMetrics:
    """The metrics of one robot (see the module docstring)."""

    def __init__(self, robot: str, model_version: str = "",
                 clock: Callable[[], float] = time.time,
                 registry: Optional[CollectorRegistry] = None):
        self.robot = robot
        self.clock = clock
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        rl = ["robot"]
        self.info = Gauge("wm_monitor_info", "The monitor and the world model it measures",
                          rl + ["model_version"], registry=r)
        self.info.labels(robot, model_version or "kinematic").set(1)
        self.error = Histogram("wm_prediction_error_meters",
                               "One-step position error of the prediction against the "
                               "localization pose one control step later [m]",
                               rl + ["model"], buckets=ERROR_BUCKETS, registry=r)
        self.heading_error = Histogram("wm_prediction_heading_error_radians",
                                       "One-step heading error of the prediction [rad]",
                                       rl + ["model"], buckets=HEADING_BUCKETS, registry=r)
        self.error_mean = Gauge("wm_prediction_error_mean_meters",
                                "Rolling mean of the one-step position error over the "
                                "monitor's window [m]", rl + ["model"], registry=r)
        self.steps = Counter("wm_prediction_steps", "Control steps whose prediction error "
                             "was measured", rl, registry=r)
        self.skipped = Counter("wm_prediction_steps_skipped", "Control steps not measured, "
                               "by reason", rl + ["reason"], registry=r)
        self.fallbacks = Counter("wm_world_model_fallbacks", "Predictions the world model's "
                                 "guard refused (kinematics used instead)", rl, registry=r)
        self.inference = Histogram("wm_model_inference_seconds",
                                   "Wall time of the monitor's one-step world-model "
                                   "prediction (batch 1) [s]", rl,
                                   buckets=INFERENCE_BUCKETS, registry=r)
        self.plan_cycles = Counter("wm_plan_cycles", "Planner cycles by PlanStatus status",
                                   rl + ["status"], registry=r)
        self.plan_solve = Histogram("wm_plan_solve_seconds",
                                    "The planner's solve time (PlanStatus.solve_time_ms) [s]",
                                    rl, buckets=SOLVE_BUCKETS, registry=r)
        self.plan_latency = Histogram("wm_plan_end_to_end_latency_seconds",
                                      "From the plan's input stamp to its PlanStatus at the "
                                      "monitor [s]", rl, buckets=LATENCY_BUCKETS, registry=r)
        self.fleet_age = Gauge("wm_fleet_snapshot_age_seconds",
                               "Age of the newest fleet/neighbours snapshot [s]", rl,
                               registry=r)
        self.fleet_oldest = Gauge("wm_fleet_neighbour_max_age_seconds",
                                  "Age of the oldest neighbour entry in the newest fleet "
                                  "snapshot [s]", rl, registry=r)
        self.fleet_count = Gauge("wm_fleet_neighbours", "Neighbours in the newest fleet "
                                 "snapshot", rl, registry=r)
        self.node_rejected = Counter("wm_node_rejected_messages",
                                     "Messages the robot's nodes rejected (their /diagnostics "
                                     "rejected.<reason> counters)", rl + ["node", "reason"],
                                     registry=r)
        self.node_level = Gauge("wm_node_diagnostic_level", "Diagnostic level of each node "
                                "(0 OK, 1 WARN, 2 ERROR, 3 STALE)", rl + ["node"], registry=r)
        self.logged = Counter("wm_transitions_logged", "High-error segments written to the "
                              "MCAP transition log", rl, registry=r)
        self.not_logged = Counter("wm_transitions_not_logged", "High-error segments not "
                                  "written, by reason", rl + ["reason"], registry=r)
        self.rejected = Counter("wm_monitor_rejected_messages", "Input messages the monitor "
                                "rejected, by reason", rl + ["reason"], registry=r)
        # series that exist from the start, so rates and ratios are defined at once
        for m in MODELS:
            self.error.labels(robot, m)
            self.heading_error.labels(robot, m)
            self.error_mean.labels(robot, m).set(float("nan"))
        self.steps.labels(robot)
        self.fallbacks.labels(robot)
        self.inference.labels(robot)
        self.plan_solve.labels(robot)
        self.plan_latency.labels(robot)
        self.logged.labels(robot)
        for s in PLAN_STATUS.values():
            self.plan_cycles.labels(robot, s)
        self._lock = threading.Lock()
        self._fleet_stamp = float("nan")
        self._fleet_oldest = float("nan")
        self.fleet_age.labels(robot).set_function(lambda: self._age(self._fleet_stamp))
        self.fleet_oldest.labels(robot).set_function(lambda: self._age(self._fleet_oldest))
        self.fleet_count.labels(robot).set(float("nan"))
        self._diag = DiagnosticCounters()
        self._fallbacks_seen = 0
        self._server = None
        self._thread = None

    def _age(self, stamp: float) -> float:
        return self.clock() - stamp if math.isfinite(stamp) else float("nan")

    # ---------------------------------------------------------------- updates
    def observe_step(self, r, error_mean: float = float("nan"),
                     kinematic_mean: float = float("nan")) -> None:
        """A StepResult of wm_monitor.prediction_error."""
        rb = self.robot
        self.steps.labels(rb).inc()
        if math.isfinite(r.position_error):
            self.error.labels(rb, "world_model").observe(r.position_error)
            self.heading_error.labels(rb, "world_model").observe(r.heading_error)
        self.error.labels(rb, "kinematic").observe(r.kinematic_position_error)
        self.heading_error.labels(rb, "kinematic").observe(r.kinematic_heading_error)
        self.inference.labels(rb).observe(r.inference_s)
        self.error_mean.labels(rb, "world_model").set(error_mean)
        self.error_mean.labels(rb, "kinematic").set(kinematic_mean)

    def observe_fallbacks(self, total: int) -> None:
        if total > self._fallbacks_seen:
            self.fallbacks.labels(self.robot).inc(total - self._fallbacks_seen)
        self._fallbacks_seen = total

    def observe_skipped(self, reason: str, n: int = 1) -> None:
        self.skipped.labels(self.robot, reason).inc(n)

    def observe_plan(self, status: int, solve_time_s: Optional[float] = None,
                     latency_s: Optional[float] = None) -> None:
        self.plan_cycles.labels(self.robot, PLAN_STATUS.get(status, "unknown")).inc()
        if solve_time_s is not None:
            self.plan_solve.labels(self.robot).observe(solve_time_s)
        if latency_s is not None:
            self.plan_latency.labels(self.robot).observe(latency_s)

    def observe_fleet(self, stamp: float, neighbour_stamps: Sequence[float]) -> None:
        """A fleet snapshot (its stamp and those of its entries, node-clock seconds); an
        older snapshot than the newest one seen changes nothing."""
        with self._lock:
            if math.isfinite(self._fleet_stamp) and stamp < self._fleet_stamp:
                return
            self._fleet_stamp = stamp
            self._fleet_oldest = min(neighbour_stamps) if neighbour_stamps else float("nan")
        self.fleet_count.labels(self.robot).set(len(neighbour_stamps))

    def observe_diagnostics(self, node: str, level: int, values: Mapping[str, str]) -> List[str]:
        """One DiagnosticStatus of one of the robot's nodes; returns the keys whose values
        could not be used."""
        counts, bad = parse_diagnostic_counts(values)
        for reason, n in counts.items():
            inc = self._diag.update(node, reason, n)
            child = self.node_rejected.labels(self.robot, node, reason)
            if inc > 0:
                child.inc(inc)
        if 0 <= level <= 3:
            self.node_level.labels(self.robot, node).set(level)
        else:
            bad.append("level")
        return bad

    def observe_logged(self) -> None:
        self.logged.labels(self.robot).inc()

    def observe_not_logged(self, reason: str) -> None:
        self.not_logged.labels(self.robot, reason).inc()

    def monitor_rejected(self, reason: str) -> None:
        self.rejected.labels(self.robot, reason).inc()

    # ---------------------------------------------------------------- endpoint
    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def serve(self, address: str = "127.0.0.1", port: int = 9469) -> int:
        """Start the HTTP endpoint (a daemon thread); returns the port it listens on."""
        from prometheus_client import start_http_server

        self.shutdown()
        self._server, self._thread = start_http_server(port, addr=address,
                                                       registry=self.registry)
        return int(self._server.server_address[1])

    def shutdown(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=2.0)
            self._server = self._thread = None


def parse_exposition(text: str) -> Dict[Tuple[str, Tuple[Tuple[str, str], ...]], float]:
    """{(sample name, sorted labels): value} of a text exposition (for tests and tools)."""
    from prometheus_client.parser import text_string_to_metric_families

    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = float(s.value)
    return out
