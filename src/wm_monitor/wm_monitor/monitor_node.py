"""monitor: the robot's monitoring (a thin rclpy adapter around prediction_error.py,
transitions.py and metrics.py).

In: localization_pose (PoseWithCovarianceStamped, map), odom (nav_msgs/Odometry: its body
twist), cmd_vel (Twist or, with `cmd_vel_stamped`, TwistStamped: the safety gate's output to
the base), payload (std_msgs/Float32 kg, latched), plan_status (wm_msgs/PlanStatus),
fleet/neighbours (wm_msgs/FleetSnapshot), /diagnostics (diagnostic_msgs/DiagnosticArray: the
rejected.<reason> counters of this robot's nodes).
Out: a Prometheus endpoint at http://`metrics_address`:`metrics_port`/metrics (metrics.py),
MCAP transition logs in `transitions_dir` (transitions.py), /diagnostics.

Every control step (dt) the world model (the planner's own LearnedMotionModel class and
artifact, batch 1) predicts the next state from the state (localization pose, odometry twist)
and the command; the prediction is compared with the localization pose one step later.
Steps whose error exceeds `error_threshold` are logged to disk with the steps before them,
for retraining. Malformed input is rejected, counted and logged (throttled); the node keeps
running. Time is the node's clock (use_sim_time works).
"""
from __future__ import annotations

import math
import os
from typing import Optional

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import PoseWithCovarianceStamped, Twist, TwistStamped
from nav_msgs.msg import Odometry
from prometheus_client import disable_created_metrics
from rclpy.logging import LoggingSeverity
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import Float32

from wm_common.ros import lifecycle
from wm_common.ros.convert import pose_to_pose2d, stamp_to_sec
from wm_common.ros.diagnostics import DiagnosticsReporter
from wm_common.ros.params import declare_params, read_params
from wm_common.ros.qos import MAP_QOS, SENSOR_QOS, STATUS_QOS
from wm_monitor.metrics import PLAN_STATUS, MonitorMetrics
from wm_monitor.params import MONITOR_PARAMS
from wm_monitor.prediction_error import (KinematicPredictor, PairingConfig,
                                         PredictionErrorTracker, load_world_model)
from wm_monitor.transitions import SegmentSelector, SegmentTooLarge, TransitionLog
from wm_msgs.msg import FleetSnapshot, PlanStatus

# A monitor must not miss commands (the base's QoS is depth 1; ours may queue a few).
MONITOR_CMD_QOS = QoSProfile(depth=10, history=HistoryPolicy.KEEP_LAST,
                             reliability=ReliabilityPolicy.RELIABLE)
DIAG_QOS = QoSProfile(depth=50, history=HistoryPolicy.KEEP_LAST,
                      reliability=ReliabilityPolicy.RELIABLE)
MAX_PLAN_LATENCY = 60.0   # s: input stamps older than this are not a latency, but garbage


class MonitorNode(lifecycle.ManagedNode):
    def __init__(self, **kwargs):
        super().__init__("monitor", **kwargs)
        declare_params(self, MONITOR_PARAMS)
        self.metrics: Optional[MonitorMetrics] = None
        self.log: Optional[TransitionLog] = None
        self.subs = []
        self.timer = None
        self.diag = None

    # ---------------------------------------------------------------- lifecycle
    def on_configure(self, state):
        p = self.p = read_params(self, MONITOR_PARAMS)
        ns = self.get_namespace().strip("/")
        self.robot_id = p["robot_id"] or (ns.split("/")[-1] if ns else "robot")
        self.own_name = self.get_fully_qualified_name()
        self.ns_prefix = "/" + ns + "/" if ns else "/"
        try:
            cfg = PairingConfig(dt=p["dt"], time_tolerance=p["time_tolerance"],
                                max_delay=p["max_delay"], max_gap=p["max_gap"],
                                window=p["window"])
            cfg.validate()
            # "none": what robot.launch.py's world_model:=none says (as the planner reads it)
            if p["world_model_artifact"].strip().lower() not in ("", "none"):
                predictor = load_world_model(p["world_model_artifact"], p["dt"],
                                             public_key_file=p["world_model_public_key"])
            else:
                predictor = KinematicPredictor(p["dt"])
            log = None
            if p["transitions_dir"]:
                log = TransitionLog(os.path.expanduser(p["transitions_dir"]),
                                    max_file_bytes=int(p["max_file_mb"] * 1e6),
                                    max_files=p["max_files"], robot=self.robot_id,
                                    model_version=predictor.version, dt=p["dt"])
        except Exception as e:  # artifact errors, bad settings: refuse to configure
            self.get_logger().error("configure failed: %s: %s" % (type(e).__name__, e))
            return lifecycle.FAILURE
        self.predictor = predictor
        self.tracker = PredictionErrorTracker(cfg, predictor)
        self.selector = SegmentSelector(p["segment_steps"], p["error_threshold"])
        self.log = log
        self._skipped_seen = {}
        self.cmd_rx_t = None       # node time of the last cmd_vel message (any)
        self.plan_ok_t = None      # node time of the last STATUS_OK plan status
        self.plan_ok_count = 0
        # no *_created series: Prometheus would store each as a series of its own
        disable_created_metrics()
        self.metrics = MonitorMetrics(self.robot_id, predictor.version, clock=self._now)
        try:
            port = self.metrics.serve(p["metrics_address"], p["metrics_port"])
        except OSError as e:
            self.get_logger().error("configure failed: metrics endpoint %s:%d: %s" % (
                p["metrics_address"], p["metrics_port"], e))
            self.metrics = None
            return lifecycle.FAILURE
        self.diag = DiagnosticsReporter(self, "monitor")
        self.diag.set_value("metrics", "http://%s:%d/metrics" % (p["metrics_address"], port))
        self.diag.set_value("model", predictor.version)
        self.diag.set_value("transitions_dir", p["transitions_dir"] or "off")
        cmd_type = TwistStamped if p["cmd_vel_stamped"] else Twist
        self.subs = [
            self.create_subscription(PoseWithCovarianceStamped, "localization_pose",
                                     self._guard(self._on_localization), STATUS_QOS),
            self.create_subscription(Odometry, "odom", self._guard(self._on_odom),
                                     SENSOR_QOS),
            self.create_subscription(cmd_type, "cmd_vel", self._guard(self._on_cmd),
                                     MONITOR_CMD_QOS),
            self.create_subscription(Float32, "payload", self._guard(self._on_payload),
                                     MAP_QOS),
            self.create_subscription(PlanStatus, "plan_status", self._guard(self._on_status),
                                     STATUS_QOS),
            self.create_subscription(FleetSnapshot, "fleet/neighbours",
                                     self._guard(self._on_fleet), STATUS_QOS),
            self.create_subscription(DiagnosticArray, "/diagnostics",
                                     self._guard(self._on_diagnostics), DIAG_QOS),
        ]
        self.timer = self.create_timer(p["dt"], self._guard(self._process))
        self.get_logger().info(
            "configured: %r measures %s (cmd_vel as %s), metrics on http://%s:%d/metrics, "
            "transitions %s" % (self.robot_id, predictor.version,
                                cmd_type.__name__, p["metrics_address"], port,
                                ("to %s (error > %.3f m)" % (p["transitions_dir"],
                                                            p["error_threshold"]))
                                if log is not None else "not logged"))
        return lifecycle.SUCCESS

    def on_deactivate(self, state):
        self._close_log()
        return super().on_deactivate(state)

    def on_cleanup(self, state):
        for s in self.subs:
            self.destroy_subscription(s)
        self.subs = []
        if self.timer is not None:
            self.destroy_timer(self.timer)
            self.timer = None
        if self.diag is not None:
            self.diag.destroy()
            self.diag = None
        self._close_log()
        if self.metrics is not None:
            self.metrics.shutdown()
            self.metrics = None
        return lifecycle.SUCCESS

    def destroy_node(self):
        self._close_log()
        if self.metrics is not None:
            self.metrics.shutdown()
        return super().destroy_node()

    def _close_log(self) -> None:
        if self.log is not None:
            try:
                self.log.close()
            except OSError as e:
                self.get_logger().error("closing the transition log: %s" % e)

    # ---------------------------------------------------------------- helpers
    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _reject(self, reason: str, detail: str = "") -> None:
        self.diag.reject(reason, detail)
        self.metrics.monitor_rejected(reason)

    def _guard(self, callback):
        """Run a callback only while active; whatever a message does, the node lives on."""
        def run(*args):
            if not self.active:
                return
            try:
                callback(*args)
            except Exception as e:  # a message we did not foresee: counted, never fatal
                self._reject("exception", "%s: %s" % (type(e).__name__, e))
        return run

    def _tracked(self, reason: str, detail: str) -> None:
        if reason:
            self._reject(reason, detail)

    # ---------------------------------------------------------------- inputs
    def _on_localization(self, msg: PoseWithCovarianceStamped) -> None:
        if msg.header.frame_id != self.p["map_frame"]:
            return self._reject("localization_frame", repr(msg.header.frame_id))
        try:
            pose = pose_to_pose2d(msg.pose.pose)
        except ValueError as e:
            return self._reject("localization_invalid", str(e))
        now = self._now()
        self._tracked(self.tracker.add_localization(stamp_to_sec(msg.header.stamp), pose.x,
                                                    pose.y, pose.yaw, now),
                      "localization at %.3f" % stamp_to_sec(msg.header.stamp))
        self._process()

    def _on_odom(self, msg: Odometry) -> None:
        if msg.header.frame_id != self.p["odom_frame"]:
            return self._reject("odom_frame", repr(msg.header.frame_id))
        t = stamp_to_sec(msg.header.stamp)
        self._tracked(self.tracker.add_odometry(t, msg.twist.twist.linear.x,
                                                msg.twist.twist.angular.z, self._now()),
                      "odometry at %.3f" % t)

    def _on_cmd(self, msg) -> None:
        now = self._now()
        self.cmd_rx_t = now
        if isinstance(msg, TwistStamped):
            if msg.header.frame_id not in ("", self.p["base_frame"]):
                return self._reject("cmd_vel_frame", repr(msg.header.frame_id))
            t, twist = stamp_to_sec(msg.header.stamp), msg.twist
        else:
            t, twist = now, msg
        self._tracked(self.tracker.add_command(t, twist.linear.x, twist.angular.z, now),
                      "command at %.3f" % t)

    def _on_payload(self, msg: Float32) -> None:
        mass = float(msg.data)
        self._tracked(self.tracker.set_payload(None if mass < 0.0 else mass),
                      "payload %r kg" % mass)
        if self.tracker.payload is not None:
            self.diag.set_value("payload_kg", "%.1f" % self.tracker.payload)

    def _on_status(self, msg: PlanStatus) -> None:
        if msg.status not in PLAN_STATUS:
            return self._reject("plan_status_invalid", "status %d" % msg.status)
        solve = float(msg.solve_time_ms)
        if not (math.isfinite(solve) and 0.0 <= solve < 1e6):
            return self._reject("plan_status_invalid", "solve_time_ms %r" % solve)
        latency = None
        t_in = stamp_to_sec(msg.input_stamp)
        if t_in > 0.0:
            latency = self._now() - t_in
            if not (-0.05 <= latency <= MAX_PLAN_LATENCY):
                self._reject("plan_status_input_stamp", "input stamp %.3f s off" % latency)
                latency = None
            else:
                latency = max(0.0, latency)
        self.metrics.observe_plan(msg.status, solve * 1e-3 if solve > 0.0 else None, latency)
        if msg.status == PlanStatus.STATUS_OK:
            self.plan_ok_t = self._now()
            self.plan_ok_count += 1

    def _on_fleet(self, msg: FleetSnapshot) -> None:
        stamps = [stamp_to_sec(r.header.stamp) for r in msg.robots]
        t = stamp_to_sec(msg.header.stamp)
        if t <= 0.0 or not all(s > 0.0 for s in stamps):
            return self._reject("fleet_stamp", "unstamped snapshot or entry")
        self.metrics.observe_fleet(t, stamps)

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for st in msg.status:
            node = st.name.split(": ", 1)[0]
            if node == self.own_name or not node.startswith(self.ns_prefix):
                continue   # our own status, or another robot's node
            values = {}
            for kv in st.values:
                values[kv.key] = kv.value
            level = st.level   # a `byte` field: bytes of length 1 in rclpy
            level = level[0] if isinstance(level, (bytes, bytearray)) and level else level
            bad = self.metrics.observe_diagnostics(
                node, level if isinstance(level, int) else -1, values)
            if bad:
                self._reject("diagnostics_invalid", "%s: %s" % (node, ", ".join(bad[:5])))

    # ---------------------------------------------------------------- steps
    def _check_commands(self, now: float) -> None:
        """A planner that plans while no command reaches us: the wrong cmd_vel type (a
        Twist subscriber never matches a TwistStamped publisher) or topic; say so."""
        if self.plan_ok_t is None or now - self.plan_ok_t > 2.0:
            return
        if self.cmd_rx_t is not None and now - self.cmd_rx_t < 5.0:
            return
        if self.cmd_rx_t is None and self.plan_ok_count < 50:
            return   # planning for less than about 5 s
        why = ("the planner plans but no cmd_vel arrived for 5 s: does cmd_vel_stamped (%s) "
               "match the safety gate's?" % self.p["cmd_vel_stamped"])
        self.diag.set_level(DiagnosticStatus.WARN, "no cmd_vel: nothing measured")
        self.get_logger().log(why, LoggingSeverity.WARN, throttle_duration_sec=30.0)

    def _process(self) -> None:
        now = self._now()
        self._check_commands(now)
        results = self.tracker.process(now)
        for reason, n in self.tracker.skipped.items():
            seen = self._skipped_seen.get(reason, 0)
            if n > seen:
                self.metrics.observe_skipped(reason, n - seen)
                self._skipped_seen[reason] = n
        if not results:
            return
        fallbacks = getattr(self.predictor, "fallbacks", 0)
        self.metrics.observe_fallbacks(fallbacks)
        for r in results:
            self.metrics.observe_step(r, self.tracker.error_mean.mean,
                                      self.tracker.kinematic_error_mean.mean)
            overlapping = self.selector.overlapping
            segment = self.selector.add(r)
            if segment is not None:
                self._log_segment(segment, r)
            elif self.selector.overlapping > overlapping and self.log is not None:
                self.metrics.observe_not_logged("overlapping")
        self.diag.set_value("steps", self.tracker.steps)
        self.diag.set_value("error_mean_m", "%.4f" % self.tracker.error_mean.mean)
        self.diag.set_value("kinematic_error_mean_m",
                            "%.4f" % self.tracker.kinematic_error_mean.mean)
        self.diag.set_value("world_model_fallbacks", fallbacks)
        self.diag.set_level(DiagnosticStatus.OK, "measuring")

    def _log_segment(self, segment: dict, r) -> None:
        if self.log is None:
            return
        try:
            path = self.log.write(segment)
        except SegmentTooLarge as e:
            self.metrics.observe_not_logged("too_large")
            self.get_logger().log(str(e), LoggingSeverity.WARN, throttle_duration_sec=10.0)
            return
        except OSError as e:
            self.metrics.observe_not_logged("write_error")
            self.diag.count("transition_write_errors")
            self.get_logger().log("transition log: %s" % e, LoggingSeverity.ERROR,
                                  throttle_duration_sec=10.0)
            return
        self.metrics.observe_logged()
        self.diag.count("transitions_logged")
        self.get_logger().info("logged %d steps ending in a %.3f m error to %s" % (
            len(segment["t"]) - 1, r.position_error, path), throttle_duration_sec=5.0)


def main(args=None):
    return lifecycle.run(MonitorNode, args=args)


if __name__ == "__main__":
    main()
