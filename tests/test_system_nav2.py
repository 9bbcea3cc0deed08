"""Nav2's planner-server and controller-server interfaces over DDS, as bt_navigator and
nav2_simple_commander use them (nav2_msgs types where installed, else wm_msgs' stand-ins with
the same fields: wm_common.ros.nav2): compute_path_to_pose returns our route round the block,
follow_path drives the robot along it to SUCCEEDED with feedback, and a second follow_path
goal with the same end (a navigator's replan) takes over without stopping the robot."""
from __future__ import annotations

import math

from action_msgs.msg import GoalStatus
from nav_msgs.msg import Odometry
from rclpy.action import ActionClient
from rosutil import start_sim_robot, wait_for

from wm_common.ros.convert import pose2d_to_pose, pose_to_pose2d
from wm_common.ros.nav2 import CODES, ComputePathToPose, FollowPath
from wm_common.ros.qos import SENSOR_QOS
from wm_sim.evaluation import clearance
from wm_sim.world import test_scene

FOOTPRINT_RADIUS = 0.3  # as tests/test_system_goal.py


def _send(client, goal, feedback=None):
    fut = client.send_goal_async(goal, feedback_callback=(
        None if feedback is None else lambda f: feedback.append(f.feedback)))
    assert wait_for(fut.done, 10.0)
    handle = fut.result()
    assert handle.accepted
    return handle, handle.get_result_async()


def test_planner_server_and_controller_server(procs, rclpy_node):
    world = test_scene()
    start, goal = world.spawns["robot_0"], world.goals["robot_0"]
    ns = "/robot1"
    sim, per, pla = start_sim_robot(procs, ns)
    node = rclpy_node.node
    truth = rclpy_node.collect(Odometry, ns + "/ground_truth", SENSOR_QOS)
    planner = ActionClient(node, ComputePathToPose, ns + "/compute_path_to_pose")
    controller = ActionClient(node, FollowPath, ns + "/follow_path")
    assert planner.wait_for_server(timeout_sec=30.0), procs.log(pla)
    assert controller.wait_for_server(timeout_sec=30.0), procs.log(pla)

    def logs():
        return "\n".join("--- %s\n%s" % (n, procs.log(p)[-3000:])
                         for n, p in (("sim", sim), ("perception", per), ("planner", pla)))

    # the planner server: from the robot's pose (localization + odometry) to the goal
    req = ComputePathToPose.Goal()
    req.goal.header.frame_id = "map"
    req.goal.pose = pose2d_to_pose(goal)
    response = None
    for _ in range(30):   # until the planner has the map and its pose in it
        handle, fut = _send(planner, req)
        assert wait_for(fut.done, 30.0), logs()
        response = fut.result()
        if response.status == GoalStatus.STATUS_SUCCEEDED:
            break
        wait_for(lambda: False, 1.0)
    assert response.status == GoalStatus.STATUS_SUCCEEDED, (
        getattr(response.result, "error_msg", "") + "\n" + logs())
    path = response.result.path
    assert path.header.frame_id == "map" and len(path.poses) >= 2
    first, last = pose_to_pose2d(path.poses[0].pose), pose_to_pose2d(path.poses[-1].pose)
    assert math.hypot(first.x - start.x, first.y - start.y) < 0.3, (first, start)
    assert math.hypot(last.x - goal.x, last.y - goal.y) < 0.05, (last, goal)
    assert abs(math.remainder(last.yaw - goal.yaw, 2 * math.pi)) < 1e-3
    # round the 1.6 m block centred on the straight line, not through it
    assert max(abs(ps.pose.position.y - start.y) for ps in path.poses) > 0.8
    if hasattr(response.result, "error_code"):
        assert response.result.error_code == CODES["ComputePathToPose"]["NONE"]
    # a goal inside the block: no route, with Nav2's reason code where the type has one
    req.goal.pose = pose2d_to_pose(type(goal)(0.5 * (start.x + goal.x),
                                              0.5 * (start.y + goal.y), 0.0))
    _, fut = _send(planner, req)
    assert wait_for(fut.done, 30.0)
    bad = fut.result()
    assert bad.status == GoalStatus.STATUS_ABORTED, logs()
    if hasattr(bad.result, "error_code"):
        assert bad.result.error_code == CODES["ComputePathToPose"]["GOAL_OCCUPIED"], \
            bad.result.error_msg

    # the controller server follows that path; a navigator re-sends it (same end) on the way
    goal_msg = FollowPath.Goal()
    goal_msg.path = path
    feedback = []
    first_handle, first_fut = _send(controller, goal_msg, feedback)
    assert wait_for(lambda: len(feedback) >= 5 and any(getattr(f, "speed", 1.0) > 0.05
                                                       for f in feedback),
                    60.0), logs()
    second_handle, second_fut = _send(controller, goal_msg, feedback)   # while it drives
    assert wait_for(first_fut.done, 10.0)
    assert first_fut.result().status == GoalStatus.STATUS_ABORTED   # preempted
    assert wait_for(second_fut.done, 90.0, period=0.2), "follow_path not done in 90 s\n" + logs()
    done = second_fut.result()
    assert done.status == GoalStatus.STATUS_SUCCEEDED, (
        getattr(done.result, "error_msg", "") + "\n" + logs())
    poses = [pose_to_pose2d(m.pose.pose) for m in list(truth)]
    final = poses[-1]
    assert math.hypot(final.x - goal.x, final.y - goal.y) < 0.5, (final, goal)
    assert min(clearance(world, p, FOOTPRINT_RADIUS) for p in poses) > 0.0
    if hasattr(feedback[0], "distance_to_goal"):   # Humble's feedback fields
        dists = [f.distance_to_goal for f in feedback]
        assert max(dists) > 4.0 and dists[-1] < 0.5, dists   # the path is about 5.5 m
        assert max(f.speed for f in feedback) > 0.1
    for p in (sim, per, pla):
        assert p.poll() is None, "a node died during the run"
