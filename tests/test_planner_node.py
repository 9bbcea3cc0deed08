"""The planner node over real DDS, fed by the test: it drives toward a goal, stops when its
inputs go stale (a controlled ramp, then zero continuously), survives malformed fields,
publishes Twist or TwistStamped, and takes optimizer parameters at run time."""
from __future__ import annotations

import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped, Twist, TwistStamped
from nav_msgs.msg import OccupancyGrid, Odometry
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from rosutil import CONFIG, call, wait_for

from wm_common.geometry import Pose2D
from wm_common.grid import Grid2D
from wm_common.ros.convert import grid_to_distance_field, pose2d_to_pose, sec_to_stamp
from wm_common.ros.qos import CMD_VEL_QOS, FIELD_QOS, SENSOR_QOS, STATUS_QOS
from wm_msgs.msg import DistanceField, PlanStatus


class FakeRobot:
    """Publishes odometry at the origin and an obstacle-free distance field, like perception."""

    def __init__(self, node, ns):
        self.node = node
        self.odom = node.create_publisher(Odometry, ns + "/odom", SENSOR_QOS)
        self.field = node.create_publisher(DistanceField, ns + "/distance_field", FIELD_QOS)
        self.goal = node.create_publisher(PoseStamped, ns + "/goal_pose", STATUS_QOS)

    def tick(self, field: bool = True, bad_field: bool = False, v: float = 0.0):
        stamp = self.node.get_clock().now().to_msg()
        o = Odometry()
        o.header.stamp, o.header.frame_id, o.child_frame_id = stamp, "odom", "base_link"
        o.pose.pose.orientation.w = 1.0
        o.twist.twist.linear.x = v
        self.odom.publish(o)
        if field:
            f = DistanceField()
            f.header.stamp, f.header.frame_id = stamp, "odom"
            grid_to_distance_field(Grid2D(-8.0, -8.0, 0.1, np.full((160, 160), 3.0), 3.0), f)
            if bad_field:
                f.width = 7  # inconsistent with the data: must be rejected, not crash
            self.field.publish(f)

    def send_goal(self, x, y, frame="odom"):
        g = PoseStamped()
        g.header.frame_id = frame
        g.pose.position.x, g.pose.position.y = x, y
        g.pose.orientation.w = 1.0
        assert wait_for(lambda: self.goal.get_subscription_count() > 0, 10.0)
        self.goal.publish(g)


def predicted_grid(node, frame="odom", lead=0.5, n=64, res=0.25, value=0):
    """A forecast like perception's: robot-aligned n x n grid centred on the origin, stamped
    `lead` seconds ahead, probabilities in percent."""
    msg = OccupancyGrid()
    msg.header.stamp = sec_to_stamp(node.get_clock().now().nanoseconds * 1e-9 + lead)
    msg.header.frame_id = frame
    msg.info.resolution = res
    msg.info.width = msg.info.height = n
    msg.info.origin = pose2d_to_pose(Pose2D(-0.5 * n * res, -0.5 * n * res, 0.0))
    msg.data = [value] * (n * n)
    return msg


def rejected(diags, ns, reason):
    """The planner under ns has reported at least one rejection for `reason`."""
    for d in diags:
        for st in d.status:
            if ns + "/planner" in st.name:
                kv = {k.key: k.value for k in st.values}
                if int(kv.get("rejected." + reason, "0")) > 0:
                    return True
    return False


def run_for(robot, seconds, **kw):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        robot.tick(**kw)
        time.sleep(0.1)


def start_planner(procs, ns, *extra):
    return procs.start("wm_planner", "planner", "--params-file", str(CONFIG / "robot.yaml"),
                       "-r", "__ns:=" + ns, *extra, name="planner" + ns.replace("/", "_"))


def test_planner_drives_to_goal_and_stops_on_stale_inputs(procs, rclpy_node):
    ns = "/ptest_a"
    proc = start_planner(procs, ns)
    node = rclpy_node.node
    cmds = rclpy_node.collect(Twist, ns + "/cmd_vel", CMD_VEL_QOS)
    status = rclpy_node.collect(PlanStatus, ns + "/plan_status", STATUS_QOS)
    diags = rclpy_node.collect(DiagnosticArray, "/diagnostics")
    robot = FakeRobot(node, ns)
    assert wait_for(lambda: robot.field.get_subscription_count() > 0, 20.0), procs.log(proc)
    robot.send_goal(3.0, 0.0)
    run_for(robot, 2.0)
    forward = [c for c in cmds if c.linear.x > 0.05]
    assert forward, "planner never drove toward the goal: %s" % procs.log(proc)
    ok = [s for s in status if s.status == PlanStatus.STATUS_OK]
    assert ok and ok[-1].solver == "mppi" and ok[-1].num_samples > 0
    assert len(ok[-1].predicted_trajectory.poses) == 11  # horizon 10 + the start
    assert ok[-1].distance_to_goal == pytest.approx(3.0, abs=0.05)

    # Perception goes silent: the robot must be stopped within the field timeout.
    n_before = len(cmds)
    time.sleep(1.5)
    assert len(cmds) > n_before, "no command while inputs are stale"
    last = cmds[-1]
    assert last.linear.x == 0.0 and last.angular.z == 0.0
    assert any(s.status == PlanStatus.STATUS_STALE_INPUTS for s in status)

    # Malformed distance fields are rejected and counted; the node keeps running.
    run_for(robot, 1.0, bad_field=True)
    assert proc.poll() is None
    assert wait_for(lambda: rejected(diags, ns, "field_invalid"), 5.0), \
        "rejection not reported in /diagnostics"
    run_for(robot, 1.0)
    assert cmds[-1].linear.x > 0.0, "planner did not recover after bad input"


def test_fleet_yield_parks_the_robot_at_the_passing_place_then_resumes(procs, rclpy_node):
    """fleet/yield_goal (the fleet client's deadlock rule) replaces the goal while it holds:
    at the passing place the robot waits (zero, status idle), the action goal stays; an empty
    frame_id releases it back to the goal."""
    ns = "/ptest_y"
    proc = start_planner(procs, ns)
    node = rclpy_node.node
    cmds = rclpy_node.collect(Twist, ns + "/cmd_vel", CMD_VEL_QOS)
    status = rclpy_node.collect(PlanStatus, ns + "/plan_status", STATUS_QOS)
    yield_pub = node.create_publisher(PoseStamped, ns + "/fleet/yield_goal", STATUS_QOS)
    robot = FakeRobot(node, ns)
    assert wait_for(lambda: robot.field.get_subscription_count() > 0, 20.0), procs.log(proc)
    robot.send_goal(3.0, 0.0)
    run_for(robot, 1.5)
    assert [c for c in cmds if c.linear.x > 0.05], procs.log(proc)
    park = PoseStamped()
    park.header.frame_id = "odom"
    park.pose.position.x = 0.1  # within yield_tolerance of where the robot stands
    park.pose.orientation.w = 1.0
    yield_pub.publish(park)
    run_for(robot, 1.5)
    # waiting there, goal still active (the fleet client keeps counting it as working)
    assert cmds[-1].linear.x == 0.0 and status[-1].status == PlanStatus.STATUS_WAITING
    assert status[-1].behavior == "yield"
    release = PoseStamped()  # empty frame_id: released
    yield_pub.publish(release)
    run_for(robot, 1.5)
    assert cmds[-1].linear.x > 0.05 and status[-1].status == PlanStatus.STATUS_OK
    assert status[-1].distance_to_goal == pytest.approx(3.0, abs=0.05)
    assert proc.poll() is None


def test_planner_publishes_twist_stamped_when_asked(procs, rclpy_node):
    ns = "/ptest_b"
    proc = start_planner(procs, ns, "-p", "cmd_vel_stamped:=true")
    node = rclpy_node.node
    cmds = rclpy_node.collect(TwistStamped, ns + "/cmd_vel", CMD_VEL_QOS)
    robot = FakeRobot(node, ns)
    assert wait_for(lambda: robot.field.get_subscription_count() > 0, 20.0), procs.log(proc)
    robot.send_goal(0.0, 2.0)
    run_for(robot, 2.0)
    assert cmds, procs.log(proc)
    assert all(c.header.frame_id == "base_link" for c in cmds)
    assert any(abs(c.twist.angular.z) > 0.05 or c.twist.linear.x > 0.05 for c in cmds), [
        (round(c.twist.linear.x, 3), round(c.twist.angular.z, 3)) for c in cmds]


def test_map_goal_needs_localization(procs, rclpy_node):
    """A goal in map with no map->odom source must not move the robot."""
    ns = "/ptest_c"
    proc = start_planner(procs, ns)
    node = rclpy_node.node
    cmds = rclpy_node.collect(Twist, ns + "/cmd_vel", CMD_VEL_QOS)
    status = rclpy_node.collect(PlanStatus, ns + "/plan_status", STATUS_QOS)
    robot = FakeRobot(node, ns)
    assert wait_for(lambda: robot.field.get_subscription_count() > 0, 20.0), procs.log(proc)
    robot.send_goal(3.0, 0.0, frame="map")
    run_for(robot, 1.5)
    assert cmds and all(c.linear.x == 0.0 and c.angular.z == 0.0 for c in cmds)
    assert any(s.status == PlanStatus.STATUS_NO_TRANSFORM for s in status)


def test_predicted_occupancy_used_and_malformed_rejected(procs, rclpy_node):
    """Valid forecasts reach the critic (the plan's cost rises); bad ones are counted in
    /diagnostics and dropped, and the robot keeps driving."""
    ns = "/ptest_d"
    proc = start_planner(procs, ns)
    node = rclpy_node.node
    cmds = rclpy_node.collect(Twist, ns + "/cmd_vel", CMD_VEL_QOS)
    status = rclpy_node.collect(PlanStatus, ns + "/plan_status", STATUS_QOS)
    diags = rclpy_node.collect(DiagnosticArray, "/diagnostics")
    pubs = [node.create_publisher(OccupancyGrid, ns + "/" + topic, STATUS_QOS)
            for topic in ("predicted_occupancy_05s", "predicted_occupancy_10s")]
    robot = FakeRobot(node, ns)
    assert wait_for(lambda: robot.field.get_subscription_count() > 0
                    and all(p.get_subscription_count() > 0 for p in pubs), 20.0), procs.log(proc)
    robot.send_goal(3.0, 0.0)
    run_for(robot, 1.0)
    before = [s.cost for s in status if s.status == PlanStatus.STATUS_OK]
    assert before, procs.log(proc)

    short = predicted_grid(node)
    short.data = short.data[:-5]                                    # size mismatch
    bad_value = predicted_grid(node, lead=1.0, value=120)           # not a percentage
    wrong_frame = predicted_grid(node, frame="base_link")
    n_status = len(status)
    end = time.monotonic() + 2.0
    while time.monotonic() < end:
        robot.tick()
        pubs[0].publish(short)
        pubs[1].publish(bad_value)
        pubs[0].publish(wrong_frame)
        # valid, and certain everywhere: every step costs weight * 1 (3.0 in robot.yaml)
        for lead, pub in zip((0.5, 1.0), pubs):
            pub.publish(predicted_grid(node, lead=lead, value=100))
        time.sleep(0.1)
    assert proc.poll() is None, procs.log(proc)
    assert wait_for(lambda: rejected(diags, ns, "prediction_invalid")
                    and rejected(diags, ns, "prediction_frame"), 5.0), \
        "rejections not reported in /diagnostics"
    after = [s.cost for s in status[n_status:] if s.status == PlanStatus.STATUS_OK]
    assert after and any(c.linear.x > 0.05 for c in cmds[-10:]), procs.log(proc)
    # 10 steps x weight 3: the forecast reached the critic, timed within max_age
    assert np.median(after[len(after) // 2:]) > np.median(before) + 20.0, (before, after)
    assert "planner failed" not in procs.log(proc)


def test_stale_inputs_ramp_down_at_the_deceleration_limit(procs, rclpy_node):
    """Every published command stays within a_max of the previous one (header stamps), a
    stall brings a moving robot to zero through a ramp (not a step), and zero then keeps
    coming while stopped."""
    ns = "/ptest_e"
    a_max = 1.0   # config/robot.yaml
    proc = start_planner(procs, ns, "-p", "cmd_vel_stamped:=true")
    node = rclpy_node.node
    cmds = rclpy_node.collect(TwistStamped, ns + "/cmd_vel", CMD_VEL_QOS)
    robot = FakeRobot(node, ns)
    assert wait_for(lambda: robot.field.get_subscription_count() > 0, 20.0), procs.log(proc)
    robot.send_goal(6.0, 0.0)
    run_for(robot, 2.5, v=0.5)   # odometry says the robot already rolls at 0.5 m/s
    assert max(c.twist.linear.x for c in cmds) > 0.4, procs.log(proc)
    n_moving = len(cmds)
    time.sleep(2.0)               # perception and odometry go silent
    stall = cmds[n_moving - 1:]
    speeds = [c.twist.linear.x for c in stall]
    # Cycles already in flight may still publish a little; the stop is the strictly
    # decreasing run that ends at the first zero.
    assert speeds[-1] == 0.0
    first_zero = speeds.index(0.0)
    start = first_zero
    while start > 0 and speeds[start - 1] > speeds[start]:
        start -= 1
    ramp = speeds[start:first_zero]
    assert len(ramp) >= 4 and ramp[0] > 0.3, "stopped in a step, not a ramp: %s" % speeds
    zeros_tail = speeds[first_zero:]
    assert all(v == 0.0 for v in zeros_tail), speeds
    assert len(zeros_tail) >= 10, "zero not published continuously while stopped"

    def t(c):
        return c.header.stamp.sec + c.header.stamp.nanosec * 1e-9
    for a, b in zip(cmds, cmds[1:]):
        dt = min(max(t(b) - t(a), 0.0), 0.2)   # the limiter's max_gap: 2 control periods
        assert abs(b.twist.linear.x - a.twist.linear.x) <= a_max * dt + 0.02, (
            t(a), a.twist.linear.x, t(b), b.twist.linear.x)


def _set(node, ns, name, value):
    if isinstance(value, list):
        pv = ParameterValue(type=ParameterType.PARAMETER_DOUBLE_ARRAY,
                            double_array_value=value)
    elif isinstance(value, float):
        pv = ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=value)
    else:
        pv = ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=value)
    res = call(node, SetParameters, ns + "/planner/set_parameters",
               SetParameters.Request(parameters=[Parameter(name=name, value=pv)]))
    return res.results[0]


def test_parameters_change_at_run_time_where_sensible(procs, rclpy_node):
    ns = "/ptest_f"
    proc = start_planner(procs, ns)
    node = rclpy_node.node
    cmds = rclpy_node.collect(Twist, ns + "/cmd_vel", CMD_VEL_QOS)
    robot = FakeRobot(node, ns)
    assert wait_for(lambda: robot.field.get_subscription_count() > 0, 20.0), procs.log(proc)
    robot.send_goal(6.0, 0.0)
    run_for(robot, 1.5, v=0.3)
    assert max(c.linear.x for c in cmds) > 0.3, procs.log(proc)
    # a limit, live: the next commands respect the new top speed
    r = _set(node, ns, "v_max", 0.15)
    assert r.successful, r.reason
    run_for(robot, 0.6, v=0.1)   # slowing from > 0.3 m/s at a_max takes ~0.25 s
    n = len(cmds)
    run_for(robot, 1.0, v=0.1)
    assert cmds[n:] and max(c.linear.x for c in cmds[n:]) <= 0.15 + 1e-6
    assert "parameters changed at run time: v_max=0.15" in procs.log(proc)
    # a critic weight, live
    assert _set(node, ns, "goal.weight", 2.0).successful
    # out of range / not live: refused with the reason, nothing changes, node alive
    r = _set(node, ns, "v_max", -1.0)
    assert not r.successful and "out of range" in r.reason   # rclpy checks the descriptor
    # checks only the planner can make (the optimizer is built before it is swapped in)
    r = _set(node, ns, "footprint", [0.3, 0.2, 0.3, -0.2, -0.3])
    assert not r.successful and "footprint" in r.reason and "vertices" in r.reason
    r = _set(node, ns, "odom_frame", "elsewhere")
    assert not r.successful and "only change while unconfigured" in r.reason
    run_for(robot, 1.0, v=0.1)
    assert proc.poll() is None and cmds[-1].linear.x > 0.0


def _diag_value(diags, ns, key):
    for d in reversed(diags):
        for st in d.status:
            if ns + "/planner" in st.name:
                kv = {k.key: k.value for k in st.values}
                if key in kv:
                    return kv[key]
    return None


def test_global_route_around_a_wall_and_an_external_path_replaces_it(procs, rclpy_node):
    """With a map on the map topic and localization, a map goal behind a wall gets a global
    route (published on global_plan, map frame) that goes round the wall; a path published on
    `plan` then replaces it while fresh."""
    from geometry_msgs.msg import PoseWithCovarianceStamped
    from nav_msgs.msg import Path

    from wm_common.ros.qos import MAP_QOS

    ns = "/ptest_g"
    proc = start_planner(procs, ns, "-p", "map_topic:=%s/map" % ns)
    node = rclpy_node.node
    routes = rclpy_node.collect(Path, ns + "/global_plan", STATUS_QOS)
    diags = rclpy_node.collect(DiagnosticArray, "/diagnostics")
    robot = FakeRobot(node, ns)
    map_pub = node.create_publisher(OccupancyGrid, ns + "/map", MAP_QOS)
    loc_pub = node.create_publisher(PoseWithCovarianceStamped, ns + "/localization_pose",
                                    STATUS_QOS)
    # 12 x 12 m room, origin (-2, -6); a wall at x = 3 from y = -4 to y = 4
    m = OccupancyGrid()
    m.header.frame_id = "map"
    m.info.resolution, m.info.width, m.info.height = 0.1, 120, 120
    m.info.origin = pose2d_to_pose(Pose2D(-2.0, -6.0, 0.0))
    cells = np.zeros((120, 120), dtype=np.int8)
    cells[20:100, 49:52] = 100
    m.data = cells.ravel().tolist()
    assert wait_for(lambda: robot.field.get_subscription_count() > 0, 20.0), procs.log(proc)
    map_pub.publish(m)
    assert wait_for(lambda: "global route enabled" in procs.log(proc), 10.0), procs.log(proc)

    def tick_localized():
        robot.tick()
        loc = PoseWithCovarianceStamped()
        loc.header.stamp, loc.header.frame_id = node.get_clock().now().to_msg(), "map"
        loc.pose.pose.orientation.w = 1.0
        loc_pub.publish(loc)
    for _ in range(5):
        tick_localized()
        time.sleep(0.1)
    robot.send_goal(6.0, 0.0, frame="map")
    end = time.monotonic() + 4.0
    while time.monotonic() < end and not routes:
        tick_localized()
        time.sleep(0.1)
    assert routes, procs.log(proc)
    route = np.array([[p.pose.position.x, p.pose.position.y] for p in routes[-1].poses])
    assert routes[-1].header.frame_id == "map"
    assert np.hypot(*(route[-1] - [6.0, 0.0])) < 0.2
    assert np.abs(route[:, 1]).max() > 4.0, "the route does not go round the wall"

    ext = node.create_publisher(Path, ns + "/plan", STATUS_QOS)
    path = Path()
    path.header.frame_id = "odom"
    for x in np.linspace(0.0, 2.0, 11):
        ps = PoseStamped()
        ps.header.frame_id = "odom"
        ps.pose.position.x, ps.pose.position.y = float(x), 1.0
        path.poses.append(ps)
    end = time.monotonic() + 5.0
    while time.monotonic() < end and _diag_value(diags, ns, "route") != "external":
        ext.publish(path)
        tick_localized()
        time.sleep(0.1)
    assert _diag_value(diags, ns, "route") == "external", procs.log(proc)
    assert proc.poll() is None


@pytest.mark.parametrize("solver", ["hybrid", "nmpc"])
def test_casadi_solvers_drive_the_robot(procs, rclpy_node, solver):
    """solver:=nmpc (CasADi IPOPT over the world model) and solver:=hybrid (MPPI refined by a
    few SQP iterations) plan and drive; plan_status names the solver."""
    ns = "/ptest_" + solver
    proc = start_planner(procs, ns, "-p", "solver:=" + solver)
    node = rclpy_node.node
    cmds = rclpy_node.collect(Twist, ns + "/cmd_vel", CMD_VEL_QOS)
    status = rclpy_node.collect(PlanStatus, ns + "/plan_status", STATUS_QOS)
    robot = FakeRobot(node, ns)
    # building the NLP around the world model takes a few seconds at configure
    assert wait_for(lambda: robot.field.get_subscription_count() > 0, 40.0), procs.log(proc)
    robot.send_goal(3.0, 0.5)
    # the first solves of IPOPT take long on a loaded machine: tick until plans come (a
    # bound from the stale timeouts would be too short to be a speed claim; none is made)
    end = time.monotonic() + 30.0
    while time.monotonic() < end and not (
            sum(s.status == PlanStatus.STATUS_OK for s in status) >= 5
            and any(c.linear.x > 0.05 for c in cmds)):
        run_for(robot, 0.5, v=0.2)
    ok = [s for s in status if s.status == PlanStatus.STATUS_OK]
    assert ok and all(s.solver == solver for s in ok), procs.log(proc)
    assert any(c.linear.x > 0.05 for c in cmds), procs.log(proc)


def test_world_model_swap_on_a_service_call(procs, rclpy_node, tmp_path):
    """~/swap_world_model: a corrupt artifact and one whose limits do not fit are refused
    (the old model keeps planning), a good new version is taken while the robot drives."""
    import shutil

    from wm_msgs.srv import SwapWorldModel
    from wm_world_model.artifact import load_artifact, save_artifact

    shipped = CONFIG.parent / "src" / "wm_world_model" / "models" / "worldmodel-1.0.0"
    corrupt = tmp_path / "corrupt" / "worldmodel-1.0.0"
    shutil.copytree(shipped, corrupt)
    data = bytearray((corrupt / "config.json").read_bytes())
    (corrupt / "config.json").write_bytes(bytes(data).replace(b"64", b"65", 1))
    model, _ = load_artifact(str(shipped))
    newer = save_artifact(model, str(tmp_path), "1.0.1", onnx=False)
    model.config.v_abs_max = 0.1
    slow = save_artifact(model, str(tmp_path), "1.0.2", onnx=False)

    ns = "/ptest_swap"
    proc = start_planner(procs, ns)
    node = rclpy_node.node
    cmds = rclpy_node.collect(Twist, ns + "/cmd_vel", CMD_VEL_QOS)
    diags = rclpy_node.collect(DiagnosticArray, "/diagnostics")
    robot = FakeRobot(node, ns)
    assert wait_for(lambda: robot.field.get_subscription_count() > 0, 20.0), procs.log(proc)
    robot.send_goal(3.0, 0.0)
    run_for(robot, 1.0)

    def swap(artifact):
        return call(node, SwapWorldModel, ns + "/planner/swap_world_model",
                    SwapWorldModel.Request(artifact=str(artifact)))

    res = swap(corrupt)
    assert not res.success and "checksum mismatch" in res.message, res.message
    assert res.version == "1.0.0"
    res = swap(slow)
    assert not res.success and "probe" in res.message and "speed limit" in res.message
    res = swap(newer)
    assert res.success, res.message
    assert (res.version, res.previous_version) == ("1.0.1", "1.0.0")
    n = len(cmds)
    run_for(robot, 1.0)
    assert proc.poll() is None
    assert any(c.linear.x > 0.05 for c in cmds[n:]), "no driving after the swap"
    assert wait_for(lambda: _diag_value(diags, ns, "motion_model") == "world_model 1.0.1", 5.0)
    assert wait_for(lambda: _diag_value(diags, ns, "world_model_swaps_refused") == "2", 5.0)
