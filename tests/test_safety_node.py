"""The collision monitor node over real DDS, fed by the test: it passes navigation through
smoothed, stops for points in the stop zone, lets a slow creep back out of it (escape,
counted), stops continuously when the planner goes silent, e-stops at once and stays stopped
until resume, pauses by service, and survives malformed clouds and commands (rejected,
counted, node alive); Nav2's SpeedLimit (percentage or m/s) limits navigation; a parked robot
keeps its speed zone without new localization poses."""
from __future__ import annotations

import math
import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import PoseWithCovarianceStamped, Twist
from nav_msgs.msg import Odometry
from rosutil import CONFIG, wait_for
from sensor_msgs.msg import PointCloud2, PointField
from std_msgs.msg import Bool
from std_srvs.srv import SetBool, Trigger

from wm_common.geometry import Pose2D
from wm_common.point_layouts import OUSTER, pack_points
from wm_common.ros.convert import pose2d_to_pose
from wm_common.ros.nav2 import SpeedLimit
from wm_common.ros.qos import CMD_VEL_QOS, SENSOR_QOS, STATUS_QOS
from wm_msgs.msg import SafetyState
from wm_safety.speed_zones import write_mask

NS = "/gate"


def cloud_msg(node, obstacle_x=None, corrupt=False, dark=None):
    """A 16 x 64 Ouster cloud: a ring of returns 5 m away, plus an obstacle column ahead.
    `dark` (lo, hi) degrees: beams with azimuth in it return nothing (zeros, as ouster-ros
    reports no-returns; (-180, 180): a blind sensor)."""
    rings, cols = 16, 64
    az = np.linspace(-math.pi, math.pi, cols, endpoint=False)
    x = np.tile(5.0 * np.cos(az), (rings, 1)).astype(np.float32)
    y = np.tile(5.0 * np.sin(az), (rings, 1)).astype(np.float32)
    z = np.zeros((rings, cols), np.float32)
    if obstacle_x is not None:
        x[:, 0], y[:, 0], z[:, 0] = obstacle_x, 0.0, -0.1  # base height 0.3 m
    if dark is not None:
        deg = np.tile(np.degrees(az), (rings, 1))
        off = (deg >= dark[0]) & (deg < dark[1])
        x[off] = y[off] = z[off] = 0.0
    cols_d = {f.name: np.zeros(rings * cols, dtype=np.float64) for f in OUSTER.fields}
    cols_d.update(x=x.ravel(), y=y.ravel(), z=z.ravel())
    msg = PointCloud2()
    msg.header.stamp = node.get_clock().now().to_msg()
    msg.header.frame_id = "lidar_link"
    msg.height, msg.width = rings, cols
    msg.fields = [PointField(name=f.name, offset=f.offset, datatype=f.datatype, count=f.count)
                  for f in OUSTER.fields]
    msg.point_step = OUSTER.point_step
    msg.row_step = OUSTER.point_step * cols
    msg.data = pack_points(OUSTER, cols_d)
    if corrupt:
        msg.row_step = 7  # inconsistent with width * point_step
    return msg


@pytest.fixture
def gate(procs, rclpy_node):
    node = rclpy_node.node
    p = procs.start("wm_safety", "collision_monitor", "--params-file",
                    str(CONFIG / "robot.yaml"), "-r", "__ns:=" + NS)
    pubs = {
        "points": node.create_publisher(PointCloud2, NS + "/points", SENSOR_QOS),
        "nav": node.create_publisher(Twist, NS + "/cmd_vel_nav", CMD_VEL_QOS),
        "teleop": node.create_publisher(Twist, NS + "/cmd_vel_teleop", CMD_VEL_QOS),
        "estop": node.create_publisher(Bool, NS + "/estop", STATUS_QOS),
    }
    out = rclpy_node.collect(Twist, NS + "/cmd_vel", CMD_VEL_QOS)
    states = rclpy_node.collect(SafetyState, NS + "/safety_state", STATUS_QOS)
    diags = rclpy_node.collect(DiagnosticArray, "/diagnostics")
    assert wait_for(lambda: pubs["nav"].get_subscription_count() > 0, 20.0), procs.log(p)
    yield node, p, pubs, out, states, diags


_CLIENTS = {}


def srv(node, srv_type, name, request):
    """One client per service for the whole test (a fresh client per call can miss its
    first response while DDS is still matching it)."""
    key = (id(node), name)
    if key not in _CLIENTS:
        _CLIENTS[key] = node.create_client(srv_type, name)
        assert _CLIENTS[key].wait_for_service(timeout_sec=20.0), name
        time.sleep(0.5)
    fut = _CLIENTS[key].call_async(request)
    assert wait_for(fut.done, 10.0), "no answer from " + name
    return fut.result()


def drive(node, pubs, seconds, v=0.5, w=0.0, obstacle_x=None, source="nav", dark=None):
    t_end = time.monotonic() + seconds
    while time.monotonic() < t_end:
        pubs["points"].publish(cloud_msg(node, obstacle_x, dark=dark))
        tw = Twist()
        tw.linear.x, tw.angular.z = v, w
        pubs[source].publish(tw)
        time.sleep(0.05)


def steps_ok(states, a_max=1.0):
    """Every consecutive output step within a_max * dt of the node's own stamps."""
    prev = None
    for s in states:
        t = s.header.stamp.sec + s.header.stamp.nanosec * 1e-9
        if prev is not None and s.action != "estop":
            dt = max(t - prev[0], 0.0)
            assert abs(s.output.linear.x - prev[1]) <= a_max * dt + 1e-6, (t, prev)
        prev = (t, s.output.linear.x)


def test_gate_drives_stops_for_obstacles_and_when_the_planner_goes_silent(gate, procs):
    node, p, pubs, out, states, diags = gate
    drive(node, pubs, 1.5)
    assert out and abs(out[-1].linear.x - 0.5) < 1e-6, [m.linear.x for m in out[-5:]]
    assert states[-1].source == "nav" and states[-1].action == "free"
    # an obstacle 0.35 m ahead of the nose (x = 0.40 in base_link): inside the stop zone
    drive(node, pubs, 1.5, obstacle_x=0.40)
    assert states[-1].action == "stop" and states[-1].points_stop > 0
    assert out[-1].linear.x == 0.0
    # ... in the slowdown zone (0.2 m ahead of the nose): half speed
    drive(node, pubs, 1.5, obstacle_x=0.75)
    assert states[-1].action in ("slowdown", "approach")
    assert 0.0 < out[-1].linear.x <= 0.25 + 1e-6
    drive(node, pubs, 1.5)
    n_before = len(out)
    # the planner goes silent, the sensor does not: zero, continuously
    t_end = time.monotonic() + 2.0
    while time.monotonic() < t_end:
        pubs["points"].publish(cloud_msg(node))
        time.sleep(0.05)
    tail = out[n_before:]
    assert len(tail) > 10 and tail[-1].linear.x == 0.0
    assert states[-1].source == "none"
    # the sensor goes silent too: still zero, from the timer, at about `rate`
    n = len(out)
    time.sleep(1.0)
    assert len(out) - n >= 10 and all(m.linear.x == 0.0 for m in out[n:])
    steps_ok(states)
    assert p.poll() is None


def gate_status(diags):
    for d in reversed(diags):
        for st in d.status:
            if NS + "/collision_monitor" in st.name:
                return st.level, st.message, {k.key: k.value for k in st.values}
    return None, "", {}


def test_a_blind_lidar_holds_the_robot_and_a_dark_sector_is_walled_off(gate):
    """Fresh clouds without returns are not free space to the gate either: after blind_time
    it brakes to zero at decel_linear (action blind, /diagnostics ERROR naming the LiDAR),
    and drives on once returns come back. With only the front quarter dark (-45..45 deg),
    driving forward into it is held the same way, backing away from it is free."""
    node, p, pubs, out, states, diags = gate
    drive(node, pubs, 2.0)                   # learns the sensor's normal share of returns
    assert states[-1].action == "free" and abs(out[-1].linear.x - 0.5) < 1e-6
    n = len(states)
    # blind_time 0.3 s, then 0.5 m/s at 1 m/s^2 (+ the jerk ramp) and a few cloud periods
    drive(node, pubs, 1.5, dark=(-180.0, 180.0))
    held = [s for s in states[n:] if s.action == "blind"]
    assert held and states[-1].action == "blind" and out[-1].linear.x == 0.0, \
        [(s.action, s.output.linear.x) for s in states[n::5]]
    for _ in range(30):
        if "blind" in gate_status(diags)[1]:
            break
        drive(node, pubs, 0.1, dark=(-180.0, 180.0))
    level, message, values = gate_status(diags)
    assert level == DiagnosticStatus.ERROR and "points blind" in message, message
    assert int(values.get("blind_clouds", "0")) >= 1
    steps_ok(states)
    drive(node, pubs, 1.5)                   # returns back: drives on by itself
    assert states[-1].action == "free" and abs(out[-1].linear.x - 0.5) < 1e-6
    assert states[-1].time_to_collision == -1.0          # the ring 5 m off: beyond reach
    n = len(states)
    drive(node, pubs, 1.5, dark=(-45.0, 45.0))
    # forward, into the dark quarter: held like a blind sensor, braked, never a step
    assert states[-1].action == "blind" and out[-1].linear.x == 0.0, \
        [(s.action, s.output.linear.x) for s in states[n::5]]
    for _ in range(30):
        if "dark at" in gate_status(diags)[1]:
            break
        drive(node, pubs, 0.1, dark=(-45.0, 45.0))
    assert "points dark at -45..+0 deg" in gate_status(diags)[1], gate_status(diags)
    steps_ok(states)
    drive(node, pubs, 1.5, v=-0.2, dark=(-45.0, 45.0))
    assert states[-1].action == "free" and out[-1].linear.x == pytest.approx(-0.2)
    assert states[-1].time_to_collision == -1.0          # nothing behind
    steps_ok(states)
    assert p.poll() is None


def test_two_lidars_the_robot_is_held_until_both_see(procs, rclpy_node):
    """point_topics [points, rear/points]: the front LiDAR alone is not enough (held, the
    reason names the silent one); both: free; the rear one's obstacle (it is turned round)
    stops backing up."""
    node = rclpy_node.node
    ns = NS + "_two"
    p = procs.start("wm_safety", "collision_monitor", "--params-file",
                    str(CONFIG / "robot.yaml"), "-r", "__ns:=" + ns,
                    "-p", "point_topics:=[points, rear/points]",
                    "-p", "sensor_extrinsic:=[0.2, 0.0, 0.4, 0.0, -0.2, 0.0, 0.4, 3.14159]",
                    name="collision_monitor_two")
    front = node.create_publisher(PointCloud2, ns + "/points", SENSOR_QOS)
    rear = node.create_publisher(PointCloud2, ns + "/rear/points", SENSOR_QOS)
    nav = node.create_publisher(Twist, ns + "/cmd_vel_nav", CMD_VEL_QOS)
    out = rclpy_node.collect(Twist, ns + "/cmd_vel", CMD_VEL_QOS)
    states = rclpy_node.collect(SafetyState, ns + "/safety_state", STATUS_QOS)
    assert wait_for(lambda: nav.get_subscription_count() > 0
                    and rear.get_subscription_count() > 0, 20.0), procs.log(p)

    def run(seconds, v=0.5, with_rear=True, rear_obstacle=None):
        t_end = time.monotonic() + seconds
        while time.monotonic() < t_end:
            front.publish(cloud_msg(node))
            if with_rear:
                rear.publish(cloud_msg(node, rear_obstacle))
            tw = Twist()
            tw.linear.x = v
            nav.publish(tw)
            time.sleep(0.05)

    run(1.5, with_rear=False)
    assert states and states[-1].action == "blind" and out[-1].linear.x == 0.0
    run(2.0)
    assert states[-1].action == "free" and abs(out[-1].linear.x - 0.5) < 1e-6
    # 0.25 m behind the rear LiDAR = x -0.45 in base_link: in the rear stop zone
    run(1.5, v=-0.2, rear_obstacle=0.25)
    assert states[-1].action == "stop" and out[-1].linear.x == 0.0
    run(1.0, v=-0.2)
    assert states[-1].action == "free"
    assert p.poll() is None


def test_nose_to_nose_the_robot_creeps_back_out_as_an_escape(gate):
    node, p, pubs, out, states, diags = gate
    # 5 cm ahead of the footprint (the unknown payload's overhang reaches x = 0.40 m), in the
    # stop zone: forward stays stopped
    drive(node, pubs, 1.0, v=0.3, obstacle_x=0.45)
    assert states[-1].action == "stop" and out[-1].linear.x == 0.0
    n = len(states)
    drive(node, pubs, 1.5, v=-0.3, obstacle_x=0.45)
    assert states[-1].action == "escape" and states[-1].points_stop > 0
    assert out[-1].linear.x == pytest.approx(-0.05) and out[-1].angular.z == 0.0
    assert states[-1].scale == pytest.approx(0.05 / 0.3, rel=1e-5)
    assert all(-0.05 - 1e-6 <= s.output.linear.x <= 0.0 for s in states[n:])
    drive(node, pubs, 1.0, v=0.3, obstacle_x=0.45)   # forward again: stopped again
    assert states[-1].action == "stop" and out[-1].linear.x == 0.0
    steps_ok(states)

    def escapes():
        for d in diags:
            for st in d.status:
                if "collision_monitor" in st.name:
                    kv = {k.key: k.value for k in st.values}
                    if int(kv.get("escapes", 0)) >= 1:
                        return True
        return False
    assert wait_for(escapes, 5.0), [st.values for d in diags[-2:] for st in d.status]
    assert p.poll() is None


def test_estop_is_immediate_latches_and_needs_resume(gate, rclpy_node):
    node, p, pubs, out, states, diags = gate
    drive(node, pubs, 1.5)
    assert abs(out[-1].linear.x - 0.5) < 1e-6
    pubs["estop"].publish(Bool(data=True))
    assert wait_for(lambda: states[-1].action == "estop", 2.0)
    # immediate: the first output after the e-stop is zero, no ramp
    i = next(i for i, s in enumerate(states) if s.action == "estop")
    assert states[i].output.linear.x == 0.0 and states[i - 1].output.linear.x > 0.3
    pubs["estop"].publish(Bool(data=False))    # releasing the button is not a resume
    drive(node, pubs, 0.5)
    assert states[-1].action == "estop" and out[-1].linear.x == 0.0
    res = srv(node, Trigger, NS + "/resume", Trigger.Request())
    assert res.success, res.message
    drive(node, pubs, 1.5)
    assert states[-1].action == "free" and out[-1].linear.x > 0.3
    # resume is refused while the e-stop input keeps asserting
    pubs["estop"].publish(Bool(data=True))
    assert wait_for(lambda: states[-1].action == "estop", 2.0)
    res = srv(node, Trigger, NS + "/resume", Trigger.Request())
    assert not res.success and "asserted" in res.message
    # pause: a controlled (smoothed) stop, released by the same service
    time.sleep(1.1)
    assert srv(node, Trigger, NS + "/resume", Trigger.Request()).success
    drive(node, pubs, 1.5)
    assert srv(node, SetBool, NS + "/pause", SetBool.Request(data=True)).success
    drive(node, pubs, 1.5)
    assert states[-1].action == "paused" and out[-1].linear.x == 0.0
    assert srv(node, SetBool, NS + "/pause", SetBool.Request(data=False)).success
    drive(node, pubs, 1.5)
    assert out[-1].linear.x > 0.3
    # teleop outranks navigation
    drive(node, pubs, 1.0, v=-0.2, source="teleop")
    assert states[-1].source == "teleop" and out[-1].linear.x == pytest.approx(-0.2)
    steps_ok([s for s in states if s.action != "estop"][-40:])


def test_malformed_input_is_rejected_and_counted_and_the_node_lives(gate):
    node, p, pubs, out, states, diags = gate

    def publish_bad():
        pubs["points"].publish(cloud_msg(node, corrupt=True))
        bad = Twist()
        bad.linear.x = float("nan")
        pubs["nav"].publish(bad)
        absurd = Twist()
        absurd.linear.x = 1e9
        pubs["nav"].publish(absurd)

    for _ in range(5):
        publish_bad()
        time.sleep(0.05)
    assert all(math.isfinite(m.linear.x) and math.isfinite(m.angular.z) for m in out)
    assert all(m.linear.x == 0.0 for m in out)  # never a bad command passed on

    def counted():
        for d in diags:
            for st in d.status:
                if "collision_monitor" in st.name:
                    kv = {k.key: k.value for k in st.values}
                    if int(kv.get("rejected.nav_invalid", 0)) >= 3 and any(
                            k.startswith("rejected.") and k != "rejected.nav_invalid"
                            for k in kv):
                        return True
        return False
    # a keep-last queue may drop part of a burst on a busy machine (once only 1 of the 10
    # bad commands was counted): keep sending them, at the diagnostics' pace, until counted
    assert wait_for(lambda: publish_bad() or counted(), 10.0, period=0.2), \
        [st.values for d in diags[-2:] for st in d.status]
    assert all(math.isfinite(m.linear.x) and math.isfinite(m.angular.z) for m in out)
    assert all(m.linear.x == 0.0 for m in out)
    drive(node, pubs, 1.5)  # and it still drives afterwards
    assert p.poll() is None and abs(out[-1].linear.x - 0.5) < 1e-6


def rejected(diags, reason):
    """The collision monitor's latest count of `reason` rejections in /diagnostics."""
    for d in reversed(diags):
        for st in d.status:
            if "collision_monitor" in st.name:
                kv = {k.key: k.value for k in st.values}
                return int(kv.get("rejected." + reason, 0))
    return 0


def test_nav2_speed_limit_as_percentage_or_absolute_limits_navigation(gate):
    """What Nav2's speed filter and the fleet client send: a percentage of max_linear
    (0.8 m/s in robot.yaml) or m/s; 0 lifts it; NaN or 150 % is rejected, counted, and the
    limit in force stays."""
    node, p, pubs, out, states, diags = gate
    limit_pub = node.create_publisher(SpeedLimit, NS + "/speed_limit", STATUS_QOS)
    assert wait_for(lambda: limit_pub.get_subscription_count() > 0, 10.0)

    def send(value, percentage):
        msg = SpeedLimit()
        msg.header.stamp = node.get_clock().now().to_msg()
        msg.percentage, msg.speed_limit = percentage, float(value)
        limit_pub.publish(msg)

    drive(node, pubs, 1.0)
    assert out[-1].linear.x == pytest.approx(0.5)
    send(25.0, True)                                    # 25 % of 0.8 m/s
    drive(node, pubs, 1.5)
    assert states[-1].speed_limit == pytest.approx(0.2)
    assert out[-1].linear.x == pytest.approx(0.2)
    send(0.3, False)
    drive(node, pubs, 1.5)
    assert states[-1].speed_limit == pytest.approx(0.3) and out[-1].linear.x == \
        pytest.approx(0.3)
    send(math.nan, False)
    send(150.0, True)
    send(-1.0, False)
    assert wait_for(lambda: drive(node, pubs, 0.3) or rejected(
        diags, "speed_limit_invalid") >= 3, 10.0)
    assert states[-1].speed_limit == pytest.approx(0.3)
    send(0.0, True)                                     # no limit
    drive(node, pubs, 1.5)
    assert math.isinf(states[-1].speed_limit) and out[-1].linear.x == pytest.approx(0.5)
    steps_ok(states[-60:])
    assert p.poll() is None


def test_a_parked_robot_keeps_its_speed_zone_without_new_localization_poses(
        procs, rclpy_node, tmp_path):
    """Speed zones: 50 % of max_linear where the robot parks, 25 % (the slowest) elsewhere.
    Localised once, then no pose (AMCL is silent while the robot stands): the 50 % zone
    holds past the old 2 s localization_timeout, for 5 s, while odometry says the robot
    stands; once odometry has carried it 1.2 m without a pose, the slowest limit applies."""
    node = rclpy_node.node
    mask = tmp_path / "zones.yaml"
    write_mask(str(mask), "zones.pgm", 10.0, 10.0, 0.1,
               [(0.0, 0.0, 5.0, 10.0, 50), (5.0, 0.0, 10.0, 10.0, 25)])
    ns = "/zoned"
    # odom_timeout 2 s: odometry freshness is not what this test is about (a loaded machine
    # may delay a sample); the pose's age and the travel since it are
    p = procs.start("wm_safety", "collision_monitor", "--params-file",
                    str(CONFIG / "robot.yaml"), "-r", "__ns:=" + ns,
                    "-p", "speed_zones:=" + str(mask), "-p", "use_tf:=topic",
                    "-p", "odom_timeout:=2.0", name="zoned_gate")
    pubs = {"points": node.create_publisher(PointCloud2, ns + "/points", SENSOR_QOS),
            "nav": node.create_publisher(Twist, ns + "/cmd_vel_nav", CMD_VEL_QOS)}
    odom_pub = node.create_publisher(Odometry, ns + "/odom", SENSOR_QOS)
    loc_pub = node.create_publisher(PoseWithCovarianceStamped, ns + "/localization_pose",
                                    STATUS_QOS)
    states = rclpy_node.collect(SafetyState, ns + "/safety_state", STATUS_QOS)
    assert wait_for(lambda: loc_pub.get_subscription_count() > 0
                    and pubs["nav"].get_subscription_count() > 0, 20.0), procs.log(p)
    odom_pose = [Pose2D(0.0, 0.0, 0.0)]   # odom->base; map->odom is (2, 5, 0)
    sent = []                             # odometry stamps sent

    def step(seconds, localize=False):
        t_end = time.monotonic() + seconds
        while time.monotonic() < t_end:
            o = Odometry()
            o.header.stamp, o.header.frame_id = node.get_clock().now().to_msg(), "odom"
            o.pose.pose = pose2d_to_pose(odom_pose[0])
            odom_pub.publish(o)
            sent.append(o.header.stamp)
            if localize and len(sent) > 10:
                # stamped like odometry sent 0.25 s ago: the gate has it by now
                loc = PoseWithCovarianceStamped()
                loc.header.stamp, loc.header.frame_id = sent[-6], "map"
                x = odom_pose[0].x
                loc.pose.pose = pose2d_to_pose(Pose2D(2.0 + x, 5.0, 0.0))
                loc_pub.publish(loc)
            drive(node, pubs, 0.05, v=0.6)

    def limit():
        return states[-1].speed_limit if states else None
    step(1.0)
    assert limit() == pytest.approx(0.2), procs.log(p)[-2000:]   # not localised: slowest
    assert wait_for(lambda: step(0.2, localize=True) or limit() == pytest.approx(0.4), 10.0)
    n = len(states)
    step(5.0)                                   # parked, no pose
    held = [s.speed_limit for s in states[n:] if s.source == "nav"]
    assert held and all(v == pytest.approx(0.4) for v in held), sorted(set(held))
    odom_pose[0] = Pose2D(1.2, 0.0, 0.0)        # carried 1.2 m (still in the 50 % zone)
    assert wait_for(lambda: step(0.2) or limit() == pytest.approx(0.2), 5.0)
    assert wait_for(lambda: step(0.2, localize=True) or limit() == pytest.approx(0.4), 10.0)
    assert p.poll() is None
