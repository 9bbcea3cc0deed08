"""The planner node's action servers, of Nav2's types where nav2_msgs is installed (else
wm_msgs' stand-ins, the same fields; wm_common.ros.nav2).

navigate_to_pose (NavigateToPose: drive to a pose on our route), follow_path (FollowPath: the
MPC as a controller server, the path as the route until the goal ends; a new path to the same
end replaces the route without a restart, as bt_navigator replans), compute_path_to_pose
(ComputePathToPose: our route as a planner server; the robot's own route is not changed).
Results carry Nav2's error codes where the installed type has them (Jazzy on; Humble's are
empty). The goal bookkeeping and the decisions (outcome -> error code, feedback, the path's
target, failure classes) are wm_planner.nav_goal; this module turns them into messages.
"""
from __future__ import annotations

from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.duration import Duration
from rclpy.task import Future

from wm_common.geometry import compose
from wm_common.ros.convert import pose2d_to_pose, pose_to_pose2d, trajectory_to_path
from wm_common.ros.nav2 import CODES, ComputePathToPose, FollowPath, NavigateToPose, set_error
from wm_planner import controller as ctl
from wm_planner.nav_goal import (FOLLOW, ROUTE, has_orientation, path_end, path_points,
                                 pose_error, route_error, route_poses, to_map)
from wm_planner.planner_inputs import goal_from_pose


class Nav2Actions:
    """The three action servers of `node` (a PlannerNode, configured): created in
    on_configure, destroyed in on_cleanup; `supervise` runs from the node's watchdog."""

    def __init__(self, node):
        self.node = node
        accept_cancel = lambda _: CancelResponse.ACCEPT  # noqa: E731
        self.servers = [
            ActionServer(node, NavigateToPose, "navigate_to_pose", execute_callback=self._execute,
                         goal_callback=self._on_navigate_goal, cancel_callback=accept_cancel,
                         handle_accepted_callback=self._on_navigate_accepted),
            ActionServer(node, FollowPath, "follow_path", execute_callback=self._execute,
                         goal_callback=self._on_follow_goal, cancel_callback=accept_cancel,
                         handle_accepted_callback=self._on_follow_accepted),
            ActionServer(node, ComputePathToPose, "compute_path_to_pose",
                         execute_callback=self._compute_path,
                         goal_callback=self._on_path_goal, cancel_callback=accept_cancel)]

    def destroy(self) -> None:
        for server in self.servers:
            server.destroy()

    def _accept_if_active(self) -> int:
        return GoalResponse.ACCEPT if self.node.active else GoalResponse.REJECT

    # ------------------------------------------------------------ navigate_to_pose
    def _on_navigate_goal(self, request) -> int:
        node = self.node
        try:
            goal_from_pose(request.pose, node.p)
        except ValueError as e:
            node.diag.reject("goal_invalid", str(e))
            return GoalResponse.REJECT
        if request.behavior_tree:
            node.get_logger().warning("navigate_to_pose: behavior_tree %r ignored (this "
                                      "navigator has no behaviour tree)" % request.behavior_tree,
                                      throttle_duration_sec=10.0)
        return self._accept_if_active()

    def _on_navigate_accepted(self, handle) -> None:
        node = self.node
        goal = goal_from_pose(handle.request.pose, node.p)
        goal.handle, goal.done = handle, Future()
        goal.started = node.now()
        node.goals.set(goal, node.now())
        node.get_logger().info("navigate_to_pose: (%.2f, %.2f) in %s" % (
            goal.pose.x, goal.pose.y, goal.frame_id))
        handle.execute()

    # ------------------------------------------------------------ follow_path
    def _follow_target(self, path):
        """(xy (N, 2), frame, end Pose2D) of a FollowPath path; ValueError if unusable."""
        p = self.node.p
        frame_id = path.header.frame_id or (path.poses[-1].header.frame_id if path.poses
                                            else "")
        xy, frame = path_points([[ps.pose.position.x, ps.pose.position.y]
                                 for ps in path.poses], frame_id, p["map_frame"],
                                p["odom_frame"])
        last = path.poses[-1].pose
        oriented = pose_to_pose2d(last) if has_orientation(last.orientation) else None
        return xy, frame, path_end(xy, oriented)

    def _on_follow_goal(self, request) -> int:
        node = self.node
        if node.routes is None:
            node.diag.reject("follow_path", "following a path needs global_route true")
            return GoalResponse.REJECT
        try:
            self._follow_target(request.path)
        except ValueError as e:
            node.diag.reject("follow_path", str(e))
            return GoalResponse.REJECT
        return self._accept_if_active()

    def _on_follow_accepted(self, handle) -> None:
        node = self.node
        xy, frame, end = self._follow_target(handle.request.path)
        _, new = node.goals.follow(xy, frame, end, node.now(), handle, Future())
        if new:
            node.get_logger().info("follow_path: %d poses to (%.2f, %.2f) in %s" % (
                xy.shape[0], end.x, end.y, frame))
        handle.execute()

    # ------------------------------------------------------------ both
    async def _execute(self, handle):
        # A coroutine: it waits for the control cycle to finish the goal without holding an
        # executor thread, so the node runs on a single-threaded executor (rclpy's
        # multi-threaded one delayed callbacks by up to a second in our measurements).
        goal = self.node.goals.of_handle(handle)
        action = FollowPath if hasattr(handle.request, "path") else NavigateToPose
        result = action.Result()
        if goal is None:
            handle.abort()
            set_error(result, CODES[action.__name__]["UNKNOWN"], "preempted before start")
            return result
        await goal.done
        set_error(result, goal.error_code, goal.error_msg)
        ending = goal.ending(handle.is_cancel_requested)
        if ending == "succeed":
            handle.succeed()
        elif ending == "canceled":
            handle.canceled()
        else:
            handle.abort()
        return result

    def supervise(self, now: float) -> None:
        """Cancel and feedback of the navigate_to_pose or follow_path goal (from the
        watchdog)."""
        node = self.node
        goal = node.goals.current
        if goal is None or goal.handle is None:
            return
        if goal.handle.is_cancel_requested:
            node.goals.end(ctl.CANCELED, "canceled")
            node.publish_stop()
        elif goal.feedback_due(now):
            try:
                goal.handle.publish_feedback(self._feedback(goal))
            except Exception:  # shutting down: nothing left to report to
                pass

    def _feedback(self, goal):
        node = self.node
        fb = goal.feedback(node.now(), node.p["v_max"])
        if goal.action == FOLLOW:
            msg = FollowPath.Feedback()
            if hasattr(msg, "distance_to_goal"):   # Humble's fields (newer: tracking_feedback)
                msg.distance_to_goal = fb.distance_remaining
                msg.speed = fb.speed
            return msg
        msg = NavigateToPose.Feedback()
        if goal.current_pose is not None:
            msg.current_pose.header.frame_id = goal.current_pose[1]
            msg.current_pose.header.stamp = node.get_clock().now().to_msg()
            msg.current_pose.pose = pose2d_to_pose(goal.current_pose[0])
        msg.navigation_time = Duration(seconds=fb.elapsed).to_msg()
        msg.distance_remaining = fb.distance_remaining
        msg.number_of_recoveries = fb.recoveries
        if fb.time_remaining is not None:
            msg.estimated_time_remaining = Duration(seconds=fb.time_remaining).to_msg()
        return msg

    # ------------------------------------------------------------ compute_path_to_pose
    def _on_path_goal(self, request) -> int:
        return self._accept_if_active()

    def _compute_path(self, handle):
        """ComputePathToPose: our route as a planner server (the map, the live layer and
        the footprint the robot's own route uses; the robot's route is not changed)."""
        node, p, req = self.node, self.node.p, handle.request
        result = ComputePathToPose.Result()
        t0 = node.now()

        def fail(name: str, why: str):
            set_error(result, ROUTE[name], why)
            node.diag.count("compute_path_failures")
            node.get_logger().warning("compute_path_to_pose: %s" % why,
                                      throttle_duration_sec=2.0)
            handle.abort()
            return result

        if node.routes is None:
            return fail("INVALID_PLANNER", "global_route is false: no planner")
        m2o = node.localization.lookup(node.now())
        frames = (p["map_frame"], p["odom_frame"])
        try:
            goal = to_map(req.goal.header.frame_id, pose_to_pose2d(req.goal.pose), m2o, *frames)
            if req.use_start:
                start = to_map(req.start.header.frame_id, pose_to_pose2d(req.start.pose), m2o,
                               *frames)
            elif m2o is None or node.inputs.odom.latest is None:
                return fail("TF_ERROR", "no robot pose in %s" % p["map_frame"])
            else:
                start = compose(m2o, node.inputs.odom.latest[1][0])
        except ValueError as e:
            return fail(pose_error(str(e)), str(e))
        plan = node.routes.plan_once((start.x, start.y), (goal.x, goal.y))
        if not plan.ok:
            return fail(route_error(plan.reason), plan.reason)
        stamp = node.get_clock().now()
        result.path = trajectory_to_path(route_poses(plan.route, goal.yaw), p["map_frame"],
                                         stamp.nanoseconds * 1e-9, 0.0)
        result.planning_time = Duration(seconds=max(node.now() - t0, 0.0)).to_msg()
        set_error(result, ROUTE["NONE"], "")
        handle.succeed()
        return result
