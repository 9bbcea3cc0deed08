"""The monitor node as a real process over DDS: the test plays a robot whose wheels slip (it
covers half the commanded distance, which wheel odometry cannot see) and its other nodes
(plan status, fleet snapshots, /diagnostics counters), scrapes the node's Prometheus endpoint
and checks that the metrics move: the world model's error is measured (the kinematic one
exactly as the slip makes it), plan cycles, solve time and latency are counted, fleet ages
and other nodes' rejection counters are exported, malformed messages are counted without a
crash, and high-error segments land in an MCAP file that is finished cleanly on shutdown."""
from __future__ import annotations

import math
import time
import urllib.request

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseWithCovarianceStamped, TwistStamped
from nav_msgs.msg import Odometry
from rosutil import CONFIG, wait_for
from std_msgs.msg import Float32

from wm_common.geometry import Pose2D
from wm_common.net import free_port
from wm_common.ros.convert import pose2d_to_pose, sec_to_stamp
from wm_common.ros.qos import CMD_VEL_QOS, MAP_QOS, SENSOR_QOS, STATUS_QOS
from wm_monitor.metrics import parse_exposition
from wm_monitor.transitions import read_file, read_segments
from wm_msgs.msg import FleetSnapshot, PlanStatus, RobotState

NS = "/mon1"
DT = 0.1
V, SLIP = 0.5, 0.5


def scrape(port):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=2) as r:
            return parse_exposition(r.read().decode())
    except OSError:
        return None


def get(samples, name, **labels):
    labels.setdefault("robot", "mon1")
    return samples.get((name, tuple(sorted(labels.items()))), float("nan"))


class SlippingRobot:
    """Publishes what the robot's base, localizer, planner, fleet client and safety gate
    would, for a robot driving straight at V whose wheels slip (it covers SLIP of it)."""

    def __init__(self, node):
        self.node = node
        self.cmd = node.create_publisher(TwistStamped, NS + "/cmd_vel", CMD_VEL_QOS)
        self.odom = node.create_publisher(Odometry, NS + "/odom", SENSOR_QOS)
        self.loc = node.create_publisher(PoseWithCovarianceStamped, NS + "/localization_pose",
                                         STATUS_QOS)
        self.payload = node.create_publisher(Float32, NS + "/payload", MAP_QOS)
        self.status = node.create_publisher(PlanStatus, NS + "/plan_status", STATUS_QOS)
        self.fleet = node.create_publisher(FleetSnapshot, NS + "/fleet/neighbours", STATUS_QOS)
        self.diag = node.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.pose = Pose2D(3.0, 4.0, 0.5)
        self.start()

    def start(self):
        """Stamps from now on (the grid must stay near the node's clock)."""
        self.k = 0
        self.t0 = time.time()

    def _loc_msg(self, t, pose, frame="map"):
        loc = PoseWithCovarianceStamped()
        loc.header.stamp, loc.header.frame_id = sec_to_stamp(t), frame
        loc.pose.pose = pose2d_to_pose(pose)
        return loc

    def tick(self):
        """One control period: command, odometry and localization stamped on an exact 0.1 s
        grid (wall clock, the node's clock here), then the pose moves on."""
        t = self.t0 + self.k * DT
        time.sleep(max(0.0, t - time.time()))
        stamp = sec_to_stamp(t)
        c = TwistStamped()
        c.header.stamp, c.header.frame_id = stamp, "base_link"
        c.twist.linear.x = V
        self.cmd.publish(c)
        o = Odometry()
        o.header.stamp, o.header.frame_id, o.child_frame_id = stamp, "odom", "base_link"
        o.pose.pose.orientation.w = 1.0
        o.twist.twist.linear.x = V        # the wheels turn at the command: slip is invisible
        self.odom.publish(o)
        self.loc.publish(self._loc_msg(t, self.pose))
        d = SLIP * V * DT
        self.pose = Pose2D(self.pose.x + d * math.cos(self.pose.yaw),
                           self.pose.y + d * math.sin(self.pose.yaw), self.pose.yaw)
        st = PlanStatus(status=PlanStatus.STATUS_OK, solver="mppi", solve_time_ms=12.0)
        st.header.stamp = sec_to_stamp(time.time())
        st.input_stamp = sec_to_stamp(time.time() - 0.04)
        self.status.publish(st)
        if self.k % 5 == 0:
            snap = FleetSnapshot()
            snap.header.stamp, snap.header.frame_id = sec_to_stamp(time.time()), "map"
            other = RobotState(robot_id="mon2")
            other.header.stamp, other.header.frame_id = sec_to_stamp(time.time() - 0.5), "map"
            other.pose.orientation.w = 1.0
            snap.robots = [other]
            self.fleet.publish(snap)
            arr = DiagnosticArray()
            for name, n in ((NS + "/planner: planner", "5"), ("/other/planner: planner", "9")):
                arr.status.append(DiagnosticStatus(
                    level=DiagnosticStatus.WARN, name=name, hardware_id="x",
                    values=[KeyValue(key="rejected.odom_stale", value=n),
                            KeyValue(key="solve_time_ms", value="12.0")]))
            self.diag.publish(arr)
        self.k += 1

    def malformed(self):
        """Garbage the monitor must count and survive."""
        t = time.time()
        self.loc.publish(self._loc_msg(t, Pose2D(1.0, 2.0, 0.0), frame="odom"))
        self.status.publish(PlanStatus(status=99, solve_time_ms=1.0))
        self.status.publish(PlanStatus(status=PlanStatus.STATUS_OK, solve_time_ms=math.nan))
        arr = DiagnosticArray()
        arr.status.append(DiagnosticStatus(name=NS + "/perception: perception", values=[
            KeyValue(key="rejected.cloud_stale", value="many")]))
        self.diag.publish(arr)


def test_monitor_measures_counts_and_logs_over_dds(procs, rclpy_node, tmp_path):
    port = free_port()
    logs = tmp_path / "transitions"
    robot = SlippingRobot(rclpy_node.node)
    robot.payload.publish(Float32(data=20.0))        # latched (transient local)
    p = procs.start("wm_monitor", "monitor", "--params-file", str(CONFIG / "robot.yaml"),
                    "-r", "__ns:=" + NS, "-p", "metrics_port:=%d" % port,
                    "-p", "cmd_vel_stamped:=true", "-p", "transitions_dir:=" + str(logs),
                    "-p", "error_threshold:=0.01", "-p", "segment_steps:=10",
                    "-p", "max_delay:=1.0", name="monitor")
    # torch and the world model load first: a while on two busy cores
    assert wait_for(lambda: scrape(port) is not None or p.poll() is not None, 90.0), \
        procs.log(p)[-3000:]
    assert p.poll() is None, procs.log(p)[-3000:]

    def measured(n):
        def ok():
            robot.tick()
            s = scrape(port)
            return s is not None and get(s, "wm_prediction_steps_total") >= n
        return ok

    # DDS discovery, then at least 30 measured steps (3 s of driving)
    robot.start()
    assert wait_for(measured(30), 40.0, period=0.0), procs.log(p)[-3000:]
    robot.malformed()
    for _ in range(5):
        robot.tick()
    assert wait_for(lambda: get(scrape(port) or {}, "wm_monitor_rejected_messages_total",
                                reason="plan_status_invalid") >= 2, 5.0)
    s = scrape(port)
    assert p.poll() is None, procs.log(p)[-3000:]

    # the error: kinematic exactly as the slip makes it (half of 5 cm per step), the world
    # model's about the same (it predicts the commanded 5 cm too)
    kin = get(s, "wm_prediction_error_mean_meters", model="kinematic")
    assert abs(kin - (1 - SLIP) * V * DT) < 2e-3, kin
    wm = get(s, "wm_prediction_error_mean_meters", model="world_model")
    assert 0.01 < wm < 0.05, wm
    assert get(s, "wm_prediction_error_meters_count", model="world_model") >= 30
    assert get(s, "wm_prediction_error_meters_bucket", model="world_model", le="0.01") == 0
    assert get(s, "wm_model_inference_seconds_count") >= 30
    assert get(s, "wm_monitor_info", model_version="worldmodel-1.0.0") == 1
    # the planner's cycles, solve time (12 ms) and latency (40 ms + transport)
    ok = get(s, "wm_plan_cycles_total", status="ok")
    assert ok >= 30
    assert get(s, "wm_plan_solve_seconds_bucket", le="0.015") == \
        get(s, "wm_plan_solve_seconds_count") >= 30
    assert get(s, "wm_plan_end_to_end_latency_seconds_count") >= 30
    assert get(s, "wm_plan_end_to_end_latency_seconds_bucket", le="0.03") < \
        get(s, "wm_plan_end_to_end_latency_seconds_count")
    # the fleet: a fresh snapshot with one neighbour half a second old
    assert get(s, "wm_fleet_neighbours") == 1
    assert 0.0 <= get(s, "wm_fleet_snapshot_age_seconds") < 2.0
    assert 0.5 <= get(s, "wm_fleet_neighbour_max_age_seconds") < 3.0
    # this robot's nodes' counters, not another robot's
    assert get(s, "wm_node_rejected_messages_total", node=NS + "/planner",
               reason="odom_stale") == 5
    assert get(s, "wm_node_diagnostic_level", node=NS + "/planner") == 1
    assert not any(dict(k[1]).get("node", "").startswith("/other") for k in s)
    # malformed input: counted by reason, the node still serves
    for reason in ("localization_frame", "plan_status_invalid", "diagnostics_invalid"):
        assert get(s, "wm_monitor_rejected_messages_total", reason=reason) >= 1, reason
    # high-error segments on disk, readable while the node still writes
    logged = get(s, "wm_transitions_logged_total")
    assert logged >= 2
    segs = read_segments(str(logs))
    assert len(segs) >= logged
    seg = segs[-1]
    assert seg["robot"] == "mon1" and seg["model_version"] == "worldmodel-1.0.0"
    assert seg["payload"] == 20.0 and seg["dt"] == DT
    assert len(seg["t"]) == 11 and len(seg["states"]) == 11 and len(seg["actions"]) == 11
    assert seg["error"][-1] > 0.01
    assert all(abs(b - a - DT) < 1e-6 for a, b in zip(seg["t"], seg["t"][1:]))
    assert seg["actions"][0] == [V, 0.0] and abs(seg["states"][0][3] - V) < 1e-9
    # segments never share a step
    for a, b in zip(segs, segs[1:]):
        assert b["t"][0] >= a["t"][-1] - 1e-9
    # Ctrl-C: the log file is finished (summary and footer)
    assert procs.stop(p) == 0, procs.log(p)[-3000:]
    files = sorted(logs.glob("transitions-*.mcap"))
    assert files and read_file(str(files[-1]))[1] == ""


def test_lifecycle_serves_and_releases_the_endpoint():
    """configure opens the endpoint, cleanup closes it, a second configure opens it again;
    a port that is taken fails configure (with the reason), not the process."""
    import rclpy
    from rclpy.context import Context
    from rclpy.parameter import Parameter

    from wm_common.ros.lifecycle import FAILURE, SUCCESS
    from wm_monitor.monitor_node import MonitorNode

    port = free_port()
    ctx = Context()
    rclpy.init(context=ctx)
    try:
        node = MonitorNode(context=ctx, namespace="/lc1", parameter_overrides=[
            Parameter("world_model_artifact", value=""),
            Parameter("metrics_port", value=port)])
        assert node.trigger_configure() == SUCCESS
        s = scrape(port)
        assert s is not None
        assert get(s, "wm_monitor_info", robot="lc1", model_version="kinematic") == 1
        assert node.trigger_activate() == SUCCESS and node.active
        assert node.trigger_deactivate() == SUCCESS and not node.active
        assert node.trigger_cleanup() == SUCCESS
        assert scrape(port) is None
        assert node.trigger_configure() == SUCCESS and scrape(port) is not None
        other = MonitorNode(context=ctx, namespace="/lc2", parameter_overrides=[
            Parameter("world_model_artifact", value=""),
            Parameter("metrics_port", value=port)])
        assert other.trigger_configure() == FAILURE          # the port is taken
        other.destroy_node()
        node.destroy_node()
        assert scrape(port) is None
    finally:
        rclpy.try_shutdown(context=ctx)
