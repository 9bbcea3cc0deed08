"""System test: the real nodes as separate processes over DDS. A robot in the simulator
reaches a goal behind an obstacle without collision, driven by navigate_to_pose."""
from __future__ import annotations

import math
import time

from action_msgs.msg import GoalStatus
from geometry_msgs.msg import Twist
from nav_msgs.msg import Odometry
from rclpy.action import ActionClient
from rosutil import start_sim_robot, wait_for

from wm_common.ros.convert import pose2d_to_pose, pose_to_pose2d
from wm_common.ros.qos import CMD_VEL_QOS, SENSOR_QOS
from wm_common.ros.nav2 import NavigateToPose
from wm_sim.evaluation import clearance
from wm_sim.world import test_scene

FOOTPRINT_RADIUS = 0.3  # the robot's body (0.7 x 0.55 m box) inscribed+, for contact checks


def test_robot_reaches_goal_behind_obstacle(procs, rclpy_node):
    world = test_scene()
    start, goal = world.spawns["robot_0"], world.goals["robot_0"]
    ns = "/robot1"
    sim, per, pla = start_sim_robot(procs, ns)
    node = rclpy_node.node
    truth = rclpy_node.collect(Odometry, ns + "/ground_truth", SENSOR_QOS)
    cmds = rclpy_node.collect(Twist, ns + "/cmd_vel", CMD_VEL_QOS)
    feedback = []
    client = ActionClient(node, NavigateToPose, ns + "/navigate_to_pose")
    assert client.wait_for_server(timeout_sec=30.0), procs.log(pla)

    g = NavigateToPose.Goal()
    g.pose.header.frame_id = "map"
    g.pose.pose = pose2d_to_pose(goal)
    fut = client.send_goal_async(g, feedback_callback=lambda f: feedback.append(f.feedback))
    assert wait_for(fut.done, 10.0)
    handle = fut.result()
    assert handle.accepted
    res_fut = handle.get_result_async()
    t0 = time.monotonic()
    ok = wait_for(res_fut.done, 90.0, period=0.2)
    logs = "\n".join("--- %s\n%s" % (n, procs.log(p)[-3000:])
                     for n, p in (("sim", sim), ("perception", per), ("planner", pla)))
    assert ok, "goal not finished in 90 s\n" + logs
    response = res_fut.result()
    assert response.status == GoalStatus.STATUS_SUCCEEDED, (
        getattr(response.result, "error_msg", "") + "\n" + logs)
    elapsed = time.monotonic() - t0

    poses = [pose_to_pose2d(m.pose.pose) for m in list(truth)]
    assert len(poses) > 100
    final = poses[-1]
    assert math.hypot(final.x - goal.x, final.y - goal.y) < 0.5, (final, goal)
    gaps = [clearance(world, p, FOOTPRINT_RADIUS) for p in poses]
    assert min(gaps) > 0.0, "collision: min clearance %.3f m" % min(gaps)
    # it really went around: somewhere on the way it left the straight line by > 0.8 m
    # (the block is 1.6 m wide, centred on the line)
    assert max(abs(p.y - start.y) for p in poses) > 0.8
    assert feedback and feedback[-1].distance_remaining < 5.5
    assert any(c.linear.x > 0.1 for c in cmds)
    print("reached goal in %.1f s, min clearance %.2f m" % (elapsed, min(gaps)))
    for p in (sim, per, pla):
        assert p.poll() is None, "a node died during the run"
