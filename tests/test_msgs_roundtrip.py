"""Set-up checks: wm_msgs built and usable across processes over Fast DDS, executables installed.

Every test runs its ROS code in fresh processes started through scripts/with_env, each test on a
ROS_DOMAIN_ID of its own (101..200, away from the 1..100 that conftest.py picks for the run) with
discovery kept on localhost.
"""
from __future__ import annotations

import json
import os
import random
import subprocess
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
WITH_ENV = REPO / "scripts" / "with_env"
INSTALL = REPO / "ros2_ws" / "install"

_rng = random.SystemRandom()
_used_domains = set()


def _domain_env():
    """Environment for one test's subprocesses: a domain id no other test of this run uses."""
    while True:
        domain = _rng.randint(101, 200)
        if domain not in _used_domains:
            _used_domains.add(domain)
            break
    env = os.environ.copy()
    env["ROS_DOMAIN_ID"] = str(domain)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env.pop("ROS_LOCALHOST_ONLY", None)  # deprecated in Kilted; the range above replaces it
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _start(code, env):
    return subprocess.Popen([str(WITH_ENV), "python", "-c", textwrap.dedent(code)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc, timeout):
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail("process timed out\nstdout:\n%s\nstderr:\n%s" % (out, err[-3000:]))
    return proc.returncode, out, err


def _last_json(out):
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    assert lines, "no JSON line in output:\n%s" % out
    return json.loads(lines[-1])


@pytest.fixture(scope="module", autouse=True)
def _built():
    if not (REPO / ".venv" / "bin" / "python").exists() or not INSTALL.is_dir():
        pytest.fail("environment not set up: run `bash scripts/setup.sh` (or `make setup`)")


VOXEL_SUB = """
    import json, sys, time
    import rclpy
    from wm_msgs.msg import VoxelGrid
    rclpy.init()
    node = rclpy.create_node('voxel_sub')
    got = []
    node.create_subscription(VoxelGrid, 'wm_test/voxels', got.append, 10)
    deadline = time.monotonic() + 20.0
    while not got and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
    if not got:
        sys.exit('no VoxelGrid received')
    m = got[0]
    print(json.dumps(dict(frame=m.header.frame_id, res=round(m.resolution, 4),
                          origin=[m.origin.x, m.origin.y, m.origin.z],
                          size=[m.size_x, m.size_y, m.size_z], indices=list(m.indices),
                          values=[float(v) for v in m.values], value_name=m.value_name)))
    node.destroy_node()
    rclpy.shutdown()
"""

VOXEL_PUB = """
    import time
    import rclpy
    from wm_msgs.msg import VoxelGrid
    rclpy.init()
    node = rclpy.create_node('voxel_pub')
    pub = node.create_publisher(VoxelGrid, 'wm_test/voxels', 10)
    m = VoxelGrid()
    m.header.frame_id = 'odom'
    m.resolution = 0.25
    m.origin.x, m.origin.y, m.origin.z = -1.0, -2.0, 0.0
    m.size_x, m.size_y, m.size_z = 4, 5, 6
    m.indices = [0, 3 + 4 * (2 + 5 * 1), 119]
    m.values = [1.0, 7.0, 2.5]
    m.value_name = 'point_count'
    deadline = time.monotonic() + 25.0
    while time.monotonic() < deadline:  # the test kills this process once the subscriber has it
        if pub.get_subscription_count() > 0:
            pub.publish(m)
        rclpy.spin_once(node, timeout_sec=0.1)
"""


@pytest.mark.timeout(90)
def test_voxel_grid_between_processes():
    env = _domain_env()
    sub = _start(VOXEL_SUB, env)
    pub = _start(VOXEL_PUB, env)
    try:
        rc, out, err = _finish(sub, timeout=45)
    finally:
        pub.kill()
        pub.communicate()
    assert rc == 0, err[-3000:]
    got = _last_json(out)
    assert got == dict(frame="odom", res=0.25, origin=[-1.0, -2.0, 0.0], size=[4, 5, 6],
                       indices=[0, 31, 119], values=[1.0, 7.0, 2.5], value_name="point_count")


ACTION_SERVER = """
    import time
    import rclpy
    from rclpy.action import ActionServer
    from wm_msgs.action import NavigateToPose
    rclpy.init()
    node = rclpy.create_node('nav_server')
    done = []

    def execute(handle):
        # Feedback is a plain topic: give the client's feedback reader time to be matched.
        deadline = time.monotonic() + 5.0
        while (node.count_subscribers('navigate_to_pose/_action/feedback') == 0
               and time.monotonic() < deadline):
            time.sleep(0.02)
        time.sleep(0.1)
        for i in range(3):
            fb = NavigateToPose.Feedback()
            fb.current_pose.header.frame_id = 'map'
            fb.current_pose.pose.position.x = float(i)
            fb.distance_remaining = float(3 - i)
            fb.number_of_recoveries = 0
            fb.navigation_time.sec = i
            handle.publish_feedback(fb)
        handle.succeed()
        res = NavigateToPose.Result()
        res.error_code = NavigateToPose.Result.NONE
        res.error_msg = 'reached %.1f' % handle.request.pose.pose.position.x
        done.append(True)
        return res

    ActionServer(node, NavigateToPose, 'navigate_to_pose', execute)
    print('READY', flush=True)
    while not done:
        rclpy.spin_once(node, timeout_sec=0.1)
    for _ in range(20):  # let the result reach the client before the server goes away
        rclpy.spin_once(node, timeout_sec=0.05)
    node.destroy_node()
    rclpy.shutdown()
"""

ACTION_CLIENT = """
    import json, sys
    import rclpy
    from rclpy.action import ActionClient
    from wm_msgs.action import NavigateToPose
    rclpy.init()
    node = rclpy.create_node('nav_client')
    client = ActionClient(node, NavigateToPose, 'navigate_to_pose')
    if not client.wait_for_server(timeout_sec=20.0):
        sys.exit('action server not found')
    goal = NavigateToPose.Goal()
    goal.pose.header.frame_id = 'map'
    goal.pose.pose.position.x = 4.5
    goal.pose.pose.orientation.w = 1.0
    feedback = []
    send = client.send_goal_async(goal, feedback_callback=lambda f: feedback.append(f.feedback))
    rclpy.spin_until_future_complete(node, send, timeout_sec=20.0)
    handle = send.result()
    if handle is None or not handle.accepted:
        sys.exit('goal not accepted')
    res_future = handle.get_result_async()
    rclpy.spin_until_future_complete(node, res_future, timeout_sec=20.0)
    res = res_future.result()
    if res is None:
        sys.exit('no result')
    print(json.dumps(dict(status=res.status, error_code=res.result.error_code,
                          error_msg=res.result.error_msg,
                          feedback=[f.distance_remaining for f in feedback],
                          frames=sorted({f.current_pose.header.frame_id for f in feedback}))))
    node.destroy_node()
    rclpy.shutdown()
"""


@pytest.mark.timeout(90)
def test_navigate_to_pose_action_between_processes():
    from_action_msgs_succeeded = 4  # action_msgs/GoalStatus.STATUS_SUCCEEDED
    env = _domain_env()
    server = _start(ACTION_SERVER, env)
    client = _start(ACTION_CLIENT, env)
    try:
        rc, out, err = _finish(client, timeout=45)
    finally:
        if server.poll() is None:
            try:
                server.wait(timeout=5)
            except subprocess.TimeoutExpired:
                server.kill()
        s_out, s_err = server.communicate()
    assert rc == 0, "client failed:\n%s\nserver:\n%s" % (err[-3000:], s_err[-3000:])
    got = _last_json(out)
    assert got["status"] == from_action_msgs_succeeded
    assert got["error_code"] == 0
    assert got["error_msg"] == "reached 4.5"
    # Feedback may in principle be dropped (it is a plain topic); what arrives is in order.
    assert got["feedback"], "no feedback received"
    assert got["feedback"] == sorted(set(got["feedback"]), reverse=True)
    assert set(got["feedback"]) <= {3.0, 2.0, 1.0}
    assert got["frames"] == ["map"]
    assert "READY" in s_out


@pytest.mark.timeout(60)
def test_imports_in_env():
    code = """
        import json
        import rclpy.lifecycle
        from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
        from rclpy.executors import MultiThreadedExecutor
        from std_msgs.msg import Header
        from std_srvs.srv import Trigger
        from geometry_msgs.msg import Twist
        from sensor_msgs.msg import PointCloud2
        from nav_msgs.msg import Path
        from visualization_msgs.msg import MarkerArray
        from diagnostic_msgs.msg import DiagnosticArray
        from lifecycle_msgs.msg import Transition
        from rosgraph_msgs.msg import Clock
        from rcl_interfaces.msg import ParameterDescriptor
        from wm_msgs.msg import (VoxelGrid, DistanceField, RobotState, FleetSnapshot,
                                 PlanStatus)
        from wm_msgs.action import NavigateToPose
        import os
        print(json.dumps(dict(rmw=os.environ.get('RMW_IMPLEMENTATION'),
                              no_transform=PlanStatus.STATUS_NO_TRANSFORM,
                              fleet=FleetSnapshot().robots == [],
                              no_valid_path=NavigateToPose.Result.NO_VALID_PATH)))
    """
    proc = _start(code, _domain_env())
    rc, out, err = _finish(proc, timeout=45)
    assert rc == 0, err[-3000:]
    got = _last_json(out)
    assert got == dict(rmw="rmw_fastrtps_cpp", no_transform=5, fleet=True, no_valid_path=208)


@pytest.mark.parametrize("package,exe", [
    ("wm_sim", "simulator"),
    ("wm_perception", "perception"),
    ("wm_planner", "planner"),
    ("wm_bringup", "demo"),
])
def test_console_scripts_installed(package, exe):
    path = INSTALL / package / "lib" / package / exe
    assert path.is_file(), path
    assert os.access(path, os.X_OK), path


def test_bringup_installs_launch_and_config():
    share = INSTALL / "wm_bringup" / "share" / "wm_bringup"
    for sub in ("launch", "config"):
        src_files = sorted(p.name for p in (REPO / sub).iterdir()
                           if p.is_file() and not p.name.startswith("."))
        if src_files:
            installed = {p.name for p in (share / sub).iterdir()}
            assert set(src_files) <= installed, (sub, src_files, sorted(installed))

