"""Interoperability with the real upstream ROS 2 code (`make compat`; skipped without it).

The upstream packages come from an overlay given to `make compat ROS_OVERLAY=...` (a ROS 2
install, or a colcon overlay of the upstream sources built against this project's
environment): launch, launch_ros and ros2launch (`ros2 launch`), geometry2 (tf2_ros, tf2_msgs),
navigation2 (nav2_msgs, nav2_simple_commander). What runs:

* `ros2 launch wm_bringup fleet_sim.launch.py` and `ros2 launch wm_bringup robot.launch.py`
  (the launch library's own entry point): every lifecycle node comes up;
* Nav2's own Python client, nav2_simple_commander's BasicNavigator in the robot's namespace:
  goToPose, getPath and followPath against our stack, to SUCCEEDED, with feedback;
* nav2_lifecycle_manager's interface (nav2_msgs ManageLifecycleNodes, std_srvs is_active),
  called by BasicNavigator's lifecycleShutdown / lifecycleStartup;
* the tf2 path: the simulator publishes /<robot>/tf and /<robot>/tf_static, and perception,
  planner, fleet client and safety gate report that they take their transforms from tf2.
"""
from __future__ import annotations

import importlib.util
import math
import re
import shutil
import time

import pytest
from rosutil import ProcessGroup, call, wait_for

UPSTREAM = ("launch", "launch_ros", "ros2launch", "tf2_ros", "tf2_msgs", "nav2_msgs",
            "nav2_simple_commander")
MISSING = [m for m in UPSTREAM if importlib.util.find_spec(m) is None]
if shutil.which("ros2") is None:
    MISSING.append("the ros2 command (ros2cli)")

pytestmark = [
    pytest.mark.compat,
    pytest.mark.skipif(bool(MISSING), reason=(
        "upstream ROS 2 packages not importable (%s): run `make compat "
        "ROS_OVERLAY=<setup.bash of an overlay that has them>`" % ", ".join(MISSING))),
]

NS = "robot1"
NODES = ("perception", "planner", "collision_monitor", "fleet_client", "monitor")
# test_scene (wm_sim.world): robot1 spawns at (2.5, 4.0); a 1.6 m block stands between it and
# (7.5, 4.0)
START, GOAL = (2.5, 4.0), (7.5, 4.0)


def pose_stamped(navigator, x: float, y: float, yaw: float = 0.0):
    from geometry_msgs.msg import PoseStamped
    ps = PoseStamped()
    ps.header.frame_id = "map"
    ps.header.stamp = navigator.get_clock().now().to_msg()
    ps.pose.position.x, ps.pose.position.y = x, y
    ps.pose.orientation.z, ps.pose.orientation.w = math.sin(yaw / 2), math.cos(yaw / 2)
    return ps


def run_task(navigator, timeout: float):
    """Spin BasicNavigator until its task completes (as its examples do); the feedback seen."""
    feedback = []
    deadline = time.monotonic() + timeout
    while not navigator.isTaskComplete():
        fb = navigator.getFeedback()
        if fb is not None:
            feedback.append(fb)
        assert time.monotonic() < deadline, "task not complete in %.0f s" % timeout
    return feedback


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """`ros2 launch wm_bringup fleet_sim.launch.py robots:=1` on test_scene, up and active."""
    from wm_common.net import free_port
    procs = ProcessGroup(tmp_path_factory.mktemp("compat"))
    launch = procs.run(["ros2", "launch", "wm_bringup", "fleet_sim.launch.py", "robots:=1",
                        "world:=test_scene", "engine:=kinematic",
                        "redis_port:=%d" % free_port()], "fleet_sim_launch")
    up = wait_for(lambda: "all %d nodes active" % len(NODES) in procs.log(launch), 180.0,
                  period=0.5)
    assert up, procs.log(launch)[-6000:]
    yield procs, launch
    assert procs.stop(launch, timeout=60.0) is not None
    procs.stop_all()


@pytest.fixture(scope="module")
def navigator(stack):
    import rclpy
    from nav2_simple_commander.robot_navigator import BasicNavigator
    rclpy.init()
    nav = BasicNavigator(namespace=NS)
    yield nav
    nav.destroy_node()
    rclpy.try_shutdown()


def test_ros2_launch_robot_launch(tmp_path):
    """robot.launch.py alone (a real robot's entry point): all five nodes come up."""
    from wm_common.net import free_port
    procs = ProcessGroup(tmp_path)
    port = free_port()
    try:
        procs.run(["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                   "--appendonly", "no"], "redis")
        launch = procs.run(["ros2", "launch", "wm_bringup", "robot.launch.py",
                            "namespace:=robot7", "world_model:=none",
                            "metrics_port:=%d" % free_port(),
                            "redis_url:=redis://127.0.0.1:%d/0" % port], "robot_launch")
        ok = wait_for(lambda: "all %d nodes active" % len(NODES) in procs.log(launch), 180.0,
                      period=0.5)
        assert ok, procs.log(launch)[-6000:]
    finally:
        procs.stop_all()


def test_ros2_launch_two_robots_each_on_its_own_tf(tmp_path, rclpy_node):
    """fleet_sim.launch.py robots:=2: both robots' nodes come up (one Prometheus port each)
    and each robot's planner reads map->odom from its own /<robot>/tf."""
    from diagnostic_msgs.msg import DiagnosticArray
    from wm_common.net import free_port
    procs = ProcessGroup(tmp_path)
    arrays = rclpy_node.collect(DiagnosticArray, "/diagnostics", 50)

    def planners_on_tf2():
        got = {}
        for msg in list(arrays):
            for st in msg.status:
                for kv in st.values:
                    if kv.key == "map_to_odom":
                        got[st.name] = kv.value
        return all(got.get("/robot%d/planner: planner" % i) == "ok (tf2)" for i in (1, 2))

    try:
        launch = procs.run(["ros2", "launch", "wm_bringup", "fleet_sim.launch.py", "robots:=2",
                            "world:=warehouse_small", "engine:=kinematic",
                            "redis_port:=%d" % free_port()], "fleet_sim_2")
        ok = wait_for(lambda: procs.log(launch).count(
            "all %d nodes active" % len(NODES)) >= 2, 240.0, period=0.5)
        assert ok, procs.log(launch)[-6000:]
        assert "Address already in use" not in procs.log(launch)
        assert wait_for(planners_on_tf2, 30.0, period=0.5)
    finally:
        procs.stop_all()


def test_ros2_launch_fleet_sim_brings_every_node_up(stack):
    procs, launch = stack
    log = procs.log(launch)
    # the lifecycle manager configured, then activated, all five in order
    order = re.findall(r"/%s/(\w+): activate$" % NS, log, re.M)
    assert order == list(NODES), log[-4000:]
    assert launch.poll() is None


def test_basic_navigator_go_to_pose(stack, navigator):
    from nav2_simple_commander.robot_navigator import TaskResult
    from wm_common.ros.nav2 import HAVE_NAV2
    assert HAVE_NAV2   # our nodes serve nav2_msgs types here
    assert navigator.goToPose(pose_stamped(navigator, *GOAL))
    feedback = run_task(navigator, 180.0)
    assert navigator.getResult() == TaskResult.SUCCEEDED, stack[0].log(stack[1])[-4000:]
    assert feedback, "no NavigateToPose feedback"
    assert max(f.distance_remaining for f in feedback) > 4.0
    last = feedback[-1]
    assert last.current_pose.header.frame_id == "map"
    assert math.hypot(last.current_pose.pose.position.x - GOAL[0],
                      last.current_pose.pose.position.y - GOAL[1]) < 1.0


def test_basic_navigator_get_path_and_follow_path(stack, navigator):
    from nav2_simple_commander.robot_navigator import TaskResult
    # back to the start: our route as Nav2's planner server, round the block
    start = pose_stamped(navigator, *GOAL)
    path = navigator.getPath(start, pose_stamped(navigator, *START, math.pi), use_start=True)
    assert path is not None and len(path.poses) >= 2
    assert path.header.frame_id == "map"
    end = path.poses[-1].pose.position
    assert math.hypot(end.x - START[0], end.y - START[1]) < 0.05
    assert max(abs(p.pose.position.y - START[1]) for p in path.poses) > 0.8
    # ... and our MPC as its controller server, from where the robot is
    here = navigator.getPath(start, pose_stamped(navigator, *START, math.pi))
    assert here is not None
    assert navigator.followPath(here)
    feedback = run_task(navigator, 180.0)
    assert navigator.getResult() == TaskResult.SUCCEEDED, stack[0].log(stack[1])[-4000:]
    assert feedback and max(f.distance_to_goal for f in feedback) > 4.0


def test_every_node_takes_its_transforms_from_tf2(stack, rclpy_node):
    from diagnostic_msgs.msg import DiagnosticArray
    arrays = rclpy_node.collect(DiagnosticArray, "/diagnostics", 50)
    # (the safety gate looks map->odom up only for speed zones, which fleet_sim has none of;
    # the monitor compares predictions with localization poses and needs no transform)
    want = {"/%s/perception: perception" % NS: ("sensor_to_base", "tf2"),
            "/%s/planner: planner" % NS: ("map_to_odom", "ok (tf2)"),
            "/%s/fleet_client: fleet client" % NS: ("map_to_odom", "ok (tf2)")}

    def values():
        got = {}
        for msg in list(arrays):
            for st in msg.status:
                got.setdefault(st.name, {}).update({kv.key: kv.value for kv in st.values})
        return {name: got.get(name, {}).get(key) for name, (key, _) in want.items()}

    ok = wait_for(lambda: values() == {n: v for n, (_, v) in want.items()}, 30.0, period=0.5)
    assert ok, values()
    assert "map->odom from tf2" in stack[0].log(stack[1])


def test_nav2_lifecycle_requests_bring_the_nodes_down_and_up(stack, navigator, rclpy_node):
    from lifecycle_msgs.msg import State
    from lifecycle_msgs.srv import GetState
    from std_srvs.srv import Trigger
    node = rclpy_node.node

    def states():
        return {n: call(node, GetState, "/%s/%s/get_state" % (NS, n),
                        GetState.Request()).current_state.id for n in NODES}

    def is_active():
        return call(node, Trigger, "/%s/lifecycle_manager/is_active" % NS,
                    Trigger.Request()).success

    navigator.lifecycleShutdown()   # nav2_msgs ManageLifecycleNodes SHUTDOWN, found by type
    assert not is_active()
    assert set(states().values()) == {State.PRIMARY_STATE_UNCONFIGURED}
    navigator.lifecycleStartup()    # STARTUP (BasicNavigator does not wait for the answer)
    assert wait_for(is_active, 120.0, period=1.0), stack[0].log(stack[1])[-4000:]
    assert set(states().values()) == {State.PRIMARY_STATE_ACTIVE}
