"""Planner node: a thin rclpy adapter around the MPPI optimizer.

In: odom (nav_msgs/Odometry), distance_field (wm_msgs/DistanceField, from perception),
goal_pose (geometry_msgs/PoseStamped), localization_pose (PoseWithCovarianceStamped, for
map->odom when tf2 is not available), and perception's learned
forecasts predicted_occupancy_05s / _10s (nav_msgs/OccupancyGrid, percent) when the
predicted_occupancy critic is composed, and payload (std_msgs/Float32 kg, latched) for the world
model.
The motion model is the world model (`world_model_artifact`) or unicycle kinematics; a world
model prediction that is non-finite or out of bounds is counted (world_model_fallbacks) and
that cycle plans on kinematics.
Out: cmd_vel (Twist or TwistStamped), local_plan (nav_msgs/Path), plan_status
(wm_msgs/PlanStatus), markers (visualization_msgs/MarkerArray), /diagnostics.
Actions, Nav2's types where nav2_msgs is installed (else wm_msgs' stand-ins, the same fields;
wm_common.ros.nav2): navigate_to_pose (NavigateToPose: drive to a pose on our route),
follow_path (FollowPath: the MPC as a controller server, the path as the route until the goal
ends; a new path to the same end replaces the route without a restart, as bt_navigator
replans), compute_path_to_pose (ComputePathToPose: our route as a planner server). Results
carry Nav2's error codes where the installed type has them (Jazzy on; Humble's are empty).

A control cycle runs on a timer at `control_rate` and, with `plan_on_field`, as soon as a new
distance field arrives (so the latency from cloud to command is one perception + one planning
step). The cycle itself (goal check, route, progress checker and recoveries, turn on the spot,
solve, command limiter) is wm_planner.controller.Controller, the same object the in-process
evaluation and the data generator run; this node only turns messages into its inputs and its
outputs into messages. Every command passes wm_planner.command_limiter: finite, within the
velocity limits and within a_max of the previous command. Stale inputs, a failed solve, a
reached, aborted or cancelled goal bring the robot to a controlled stop at the deceleration
limit, then zero is published continuously (watchdog rate). Optimizer parameters (critic
weights, limits, sampling, recoveries) can be changed at run time (Controller.reconfigure);
the others while unconfigured.
"""
from __future__ import annotations

import array
import dataclasses
import math
from functools import partial
from typing import Optional

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus
from geometry_msgs.msg import (Point, PoseStamped, Twist,
                               TwistStamped)
from nav_msgs.msg import OccupancyGrid, Odometry, Path
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.duration import Duration
from rcl_interfaces.msg import SetParametersResult
from rclpy.logging import LoggingSeverity
from std_msgs.msg import Float32
from rclpy.task import Future
from visualization_msgs.msg import Marker, MarkerArray

from wm_common.geometry import (Pose2D, compose, inverse)
from wm_common.map_io import MapError, OccupancyMap, read_map
from wm_common.params import check_value
from wm_common.ros import lifecycle
from wm_common.ros.convert import (distance_field_to_grid, pose2d_to_pose, pose_to_pose2d,
                                   stamp_to_sec, trajectory_to_path)
from wm_common.ros.diagnostics import DiagnosticsReporter
from wm_common.ros.localization import MapToOdom, resolve_use_tf
from wm_common.ros.nav2 import (CODES, PACKAGE, ComputePathToPose, FollowPath, NavigateToPose,
                                set_error)
from wm_common.ros.params import declare_params, read_params
from wm_common.ros.qos import CMD_VEL_QOS, FIELD_QOS, MAP_QOS, SENSOR_QOS, STATUS_QOS
from wm_common.stamped_buffer import StampedBuffer
from wm_msgs.msg import DistanceField, FleetSnapshot, PlanStatus
from wm_msgs.srv import SwapWorldModel
from wm_planner import controller as ctl
from wm_planner.configure import build_motion_model
from wm_planner.controller import Controller, CycleInput
from wm_planner.model_swap import ModelSwap, probe
from wm_planner.neighbours import to_planning_frame
from wm_planner.occupancy_forecast import PredictedOccupancy
from wm_planner.params import PLANNER_PARAMS, is_live_param
from wm_world_model.state import RobotState

PREEMPTED, DEACTIVATED = "preempted", "deactivated"   # goal ends the node decides

NAV, FOLLOW, ROUTE = (CODES["NavigateToPose"], CODES["FollowPath"],
                      CODES["ComputePathToPose"])
# How a goal ended (wm_planner.controller, or the node) -> Nav2's error code, for
# navigate_to_pose and for follow_path (a navigator reports the failing part's code)
OUTCOME_CODES = {
    ctl.REACHED: (NAV["NONE"], FOLLOW["NONE"]),
    ctl.CANCELED: (NAV["NONE"], FOLLOW["NONE"]),
    ctl.TIMEOUT: (NAV["TIMEOUT"], FOLLOW["TIMEOUT"]),
    ctl.NO_WAY: (ROUTE["NO_VALID_PATH"], FOLLOW["INVALID_PATH"]),
    ctl.BLOCKED: (FOLLOW["NO_VALID_CONTROL"], FOLLOW["NO_VALID_CONTROL"]),
    ctl.NO_PROGRESS: (FOLLOW["FAILED_TO_MAKE_PROGRESS"], FOLLOW["FAILED_TO_MAKE_PROGRESS"]),
    # Nav2's controller server: "costmap timed out waiting for update"
    ctl.STALE_INPUTS: (FOLLOW["CONTROLLER_TIMED_OUT"], FOLLOW["CONTROLLER_TIMED_OUT"]),
    PREEMPTED: (NAV["UNKNOWN"], FOLLOW["UNKNOWN"]),
    DEACTIVATED: (NAV["UNKNOWN"], FOLLOW["UNKNOWN"]),
}
# A cycle's status (wm_planner.controller) -> PlanStatus.status
STATUS_CODES = {ctl.IDLE: PlanStatus.STATUS_IDLE, ctl.OK: PlanStatus.STATUS_OK,
                ctl.GOAL_REACHED: PlanStatus.STATUS_GOAL_REACHED,
                ctl.FAILED: PlanStatus.STATUS_FAILED,
                ctl.RECOVERING: PlanStatus.STATUS_RECOVERING,
                ctl.WAITING: PlanStatus.STATUS_WAITING, ctl.ABORTED: PlanStatus.STATUS_ABORTED,
                ctl.STALE: PlanStatus.STATUS_STALE_INPUTS,
                ctl.NO_TRANSFORM: PlanStatus.STATUS_NO_TRANSFORM}
# perception's occupancy forecasts (wm_perception.perception_node._predict)
PREDICTION_TOPICS = ("predicted_occupancy_05s", "predicted_occupancy_10s")


class NavGoal:
    """The goal being pursued: from navigate_to_pose or follow_path (with a handle) or from
    goal_pose (without)."""

    def __init__(self, pose: Pose2D, frame_id: str, handle=None, action: str = "navigate"):
        self.pose = pose
        self.frame_id = frame_id
        self.handle = handle
        self.action = action   # "navigate" (NavigateToPose) or "follow" (FollowPath)
        self.done = Future()  # completed by the control cycle, awaited by the action
        self.outcome = ""     # a wm_planner.controller outcome, PREEMPTED or DEACTIVATED
        self.error_msg = ""
        self.distance_remaining = float("nan")
        self.current_pose = None  # PoseStamped, for feedback
        self.speed = 0.0
        self.started = None  # node-clock time of acceptance (sim time under use_sim_time)
        self.recoveries = 0
        self.last_feedback = -1e9

    def finish(self, outcome: str, msg: str = "") -> None:
        if not self.done.done():
            self.outcome, self.error_msg = outcome, msg
            self.done.set_result(outcome)

    @property
    def error_code(self) -> int:
        """Nav2's code for how it ended."""
        return OUTCOME_CODES[self.outcome][0 if self.action == "navigate" else 1]


class PlannerNode(lifecycle.ManagedNode):
    def __init__(self, **kwargs):
        super().__init__("planner", **kwargs)
        declare_params(self, PLANNER_PARAMS)
        self._entities = []
        self.configured = False
        self._reset_state()
        self.add_on_set_parameters_callback(self._on_set_parameters)

    # ---------------------------------------------------------------- lifecycle
    def _reset_state(self):
        self.odom = StampedBuffer(maxlen=200)  # (Pose2D in odom, (v, w))
        self.last_field_t = None
        self.fleet = None  # (receive time, FleetSnapshot)
        self.goal: Optional[NavGoal] = None
        self.last_cmd_t = None
        self.stopped = True
        self.stopping = True   # the watchdog steps a controlled stop / publishes zero
        self.cycle = 0
        self.last_cycle_t = None
        self.latest_field = None   # (Grid2D, stamp msg)
        self.predictions = {}  # topic -> (stamp the forecast is for, PredictedOccupancy)

    def on_configure(self, state):
        p = self.p = read_params(self, PLANNER_PARAMS)
        try:
            self.controller = Controller(p)
        except (ValueError, KeyError, TypeError, RuntimeError, OSError, ImportError) as e:
            # RuntimeError: wm_world_model.artifact.ArtifactError (checksum, schema, signature)
            self.get_logger().error("configure failed: %s" % e)
            return lifecycle.FAILURE
        try:
            use_tf = resolve_use_tf(p["use_tf"])
        except ValueError as e:
            self.get_logger().error("configure failed: %s" % e)
            return lifecycle.FAILURE
        self._reset_state()
        cmd_type = TwistStamped if p["cmd_vel_stamped"] else Twist
        self.cmd_pub = self.create_lifecycle_publisher(cmd_type, "cmd_vel", CMD_VEL_QOS)
        self.plan_pub = self.create_lifecycle_publisher(Path, "local_plan", STATUS_QOS)
        self.status_pub = self.create_lifecycle_publisher(PlanStatus, "plan_status", STATUS_QOS)
        self.marker_pub = self.create_lifecycle_publisher(MarkerArray, "markers", STATUS_QOS)
        self.route_pub = self.create_lifecycle_publisher(Path, "global_plan", STATUS_QOS)
        self.diag = DiagnosticsReporter(self, "planner")
        model = self.controller.motion_model
        self._report_motion_model(model)
        if model.name != "kinematic":
            self.get_logger().info("motion model: world model %s" % model.version)
        self._model_failures = 0
        self.models = ModelSwap(model, p["rollback_failures"], p["rollback_window"])
        self.swap_srv = self.create_service(SwapWorldModel, "~/swap_world_model",
                                            self._on_swap_world_model)
        limits = self.controller.limiter.limits
        if limits.v_max < p["v_max"]:
            self.get_logger().log(
                "v_max %.2f m/s capped to %.2f m/s: the robot must stop (a_max %.2f m/s^2) "
                "within the horizon's reach and sensor_range" % (p["v_max"], limits.v_max,
                                                                 limits.a_max),
                LoggingSeverity.WARN)
        self.routes = self.controller.routes
        if self.routes is not None and p["map_yaml"]:
            try:
                self.controller.set_map(read_map(p["map_yaml"]))
            except (MapError, OSError) as e:
                self.get_logger().error("configure failed: map_yaml: %s" % e)
                return lifecycle.FAILURE
        self._subs = [
            self.create_subscription(Odometry, "odom", self._on_odom, SENSOR_QOS),
            self.create_subscription(DistanceField, "distance_field", self._on_field, FIELD_QOS),
            self.create_subscription(PoseStamped, "goal_pose", self._on_goal_pose, STATUS_QOS),
            # latched by whoever knows the load (task system; the simulator)
            self.create_subscription(Float32, "payload", self._on_payload, MAP_QOS),
            self.create_subscription(FleetSnapshot, "fleet/neighbours", self._on_fleet,
                                     STATUS_QOS),
            self.create_subscription(PoseStamped, "fleet/yield_goal", self._on_yield,
                                     STATUS_QOS),
        ]
        if self.routes is not None:
            # an external route (e.g. Nav2's planner server) replaces ours while fresh
            self._subs.append(self.create_subscription(Path, "plan", self._on_external_path,
                                                       STATUS_QOS))
            if not p["map_yaml"]:
                self._subs.append(self.create_subscription(OccupancyGrid, p["map_topic"],
                                                           self._on_map, MAP_QOS))
        if "predicted_occupancy" in p["critics"]:
            # perception publishes them with STATUS_QOS
            self._subs += [self.create_subscription(
                OccupancyGrid, topic, partial(self._on_prediction, topic), STATUS_QOS)
                for topic in PREDICTION_TOPICS]
        # map->odom: tf2 (AMCL, slam_toolbox, the simulator) or localization_pose + odometry
        self.localization = MapToOdom(
            self, p["map_frame"], p["odom_frame"], use_tf, self.diag,
            max_travel=p["localization_max_travel"], max_turn=p["localization_max_turn"],
            odom_timeout=p["odom_timeout"])
        self.watchdog = self.create_timer(1.0 / p["watchdog_rate"], self._on_watchdog)
        self.loop_timer = self.create_timer(1.0 / p["control_rate"], self._on_loop_timer)
        accept_cancel = lambda _: CancelResponse.ACCEPT  # noqa: E731
        self.action_servers = [
            ActionServer(self, NavigateToPose, "navigate_to_pose", execute_callback=self._execute,
                         goal_callback=self._on_action_goal, cancel_callback=accept_cancel,
                         handle_accepted_callback=self._on_action_accepted),
            ActionServer(self, FollowPath, "follow_path", execute_callback=self._execute,
                         goal_callback=self._on_follow_goal, cancel_callback=accept_cancel,
                         handle_accepted_callback=self._on_follow_accepted),
            ActionServer(self, ComputePathToPose, "compute_path_to_pose",
                         execute_callback=self._compute_path,
                         goal_callback=self._on_path_goal, cancel_callback=accept_cancel)]
        self.get_logger().info(
            "configured: K=%d H=%d dt=%.2f, map->odom from %s, cmd_vel as %s, actions as %s" % (
                p["num_samples"], p["horizon"], p["dt"], self.localization.source,
                cmd_type.__name__, PACKAGE))
        self.configured = True
        return lifecycle.SUCCESS

    def on_activate(self, state):
        self.controller.limiter.reset()   # the base is assumed at rest when control starts
        self.stopping = True
        return super().on_activate(state)

    def on_deactivate(self, state):
        # An operator's deactivate: zero now, while the publisher is still active (the ramp
        # would outlive it); the base's own cmd_vel timeout is the last resort anyway.
        self._publish_raw(0.0, 0.0)
        if self.goal is not None:
            self.goal.finish(DEACTIVATED, "planner deactivated")
            self.goal = None
            self.controller.cancel()
        return super().on_deactivate(state)

    def on_cleanup(self, state):
        for s in self._subs:
            self.destroy_subscription(s)
        self.localization.destroy()
        self.destroy_timer(self.watchdog)
        self.destroy_timer(self.loop_timer)
        for server in self.action_servers:
            server.destroy()
        self.destroy_service(self.swap_srv)
        self.configured = False
        self.diag.destroy()
        for pub in (self.cmd_pub, self.plan_pub, self.status_pub, self.marker_pub,
                    self.route_pub):
            self.destroy_lifecycle_publisher(pub)
        return lifecycle.SUCCESS

    def on_shutdown(self, state):
        return lifecycle.SUCCESS

    # ---------------------------------------------------------------- inputs
    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _reject(self, reason: str, detail: str) -> None:
        self.diag.reject(reason, detail)

    def _on_odom(self, msg: Odometry) -> None:
        if msg.header.frame_id and msg.header.frame_id != self.p["odom_frame"]:
            return self._reject("odom_frame", "odom in frame %r, expected %r" % (
                msg.header.frame_id, self.p["odom_frame"]))
        try:
            pose = pose_to_pose2d(msg.pose.pose)
        except ValueError as e:
            return self._reject("odom_invalid", str(e))
        v, w = msg.twist.twist.linear.x, msg.twist.twist.angular.z
        if not (math.isfinite(v) and math.isfinite(w)) or abs(v) > 20.0 or abs(w) > 20.0:
            return self._reject("odom_invalid", "twist not finite or absurd")
        t = stamp_to_sec(msg.header.stamp)
        if not self.odom.push(t, (pose, (float(v), float(w)))):
            return self._reject("odom_out_of_order", "stamp %.3f older than %.3f" % (
                t, self.odom.latest_stamp))
        self.localization.on_odom(t, pose)

    def _on_map(self, msg: OccupancyGrid) -> None:
        if msg.header.frame_id != self.p["map_frame"]:
            return self._reject("map_frame", "map in %r, expected %r" % (
                msg.header.frame_id, self.p["map_frame"]))
        info = msg.info
        try:
            origin = pose_to_pose2d(info.origin)
            if abs(origin.yaw) > 1e-6:
                raise MapError("rotated map origins are not supported")
            if len(msg.data) != info.width * info.height:
                raise MapError("%d cells for %d x %d" % (len(msg.data), info.width,
                                                         info.height))
            values = np.asarray(msg.data, dtype=np.int16).reshape(info.height, info.width)
            self.controller.set_map(OccupancyMap(values, info.resolution, origin.x, origin.y,
                                                 msg.header.frame_id))
        except (MapError, ValueError) as e:
            return self._reject("map_invalid", str(e))
        self.get_logger().info("map %d x %d at %.2f m: global route enabled" % (
            info.width, info.height, info.resolution))

    def _on_external_path(self, msg: Path) -> None:
        if not msg.poses:
            self.routes.external = None   # an empty path hands control back to our route
            return
        xy = np.array([[p.pose.position.x, p.pose.position.y] for p in msg.poses])
        try:
            self.routes.set_external(self._now(), msg.header.frame_id, xy)
        except ValueError as e:
            return self._reject("external_path", str(e))

    def _on_payload(self, msg: Float32) -> None:
        mass = float(msg.data)
        if not (math.isfinite(mass) and 0.0 <= mass <= 5000.0):
            return self._reject("payload", "payload %r kg is not a mass in [0, 5000]" % mass)
        self.diag.set_value("payload_kg", "%.1f" % mass)
        self.controller.set_payload(mass)

    def _on_prediction(self, topic: str, msg: OccupancyGrid) -> None:
        if msg.header.frame_id != self.p["odom_frame"]:
            return self._reject("prediction_frame", "%s in %r, expected %r" % (
                topic, msg.header.frame_id, self.p["odom_frame"]))
        info = msg.info
        try:
            origin = pose_to_pose2d(info.origin)
            pred = PredictedOccupancy.from_percent(
                msg.data, info.width, info.height, info.resolution, origin.x, origin.y,
                origin.yaw)
        except ValueError as e:
            return self._reject("prediction_invalid", "%s: %s" % (topic, e))
        t = stamp_to_sec(msg.header.stamp)
        last = self.predictions.get(topic)
        if last is not None and t < last[0]:
            return self._reject("prediction_out_of_order", "%s stamp %.3f older than %.3f" % (
                topic, t, last[0]))
        self.predictions[topic] = (t, pred)

    def _on_fleet(self, msg: FleetSnapshot) -> None:
        if msg.header.frame_id != self.p["map_frame"]:
            return self._reject("fleet_frame", "fleet snapshot in %r, expected %r" % (
                msg.header.frame_id, self.p["map_frame"]))
        self.fleet = (self._now(), msg)

    def _on_yield(self, msg: PoseStamped) -> None:
        """The fleet client's deadlock rule: drive to this passing place and wait there
        (frame_id map); an empty frame_id releases the robot to its goal again."""
        if not msg.header.frame_id:
            if self.controller.detour is not None:
                self.get_logger().info("yield released: back to the goal")
                self.controller.set_detour(None)
            return
        try:
            detour = self._goal_from_pose(msg)
        except ValueError as e:
            return self._reject("yield_invalid", str(e))
        self.controller.set_detour(detour.pose, detour.frame_id)
        self.get_logger().info("yielding: to the passing place (%.2f, %.2f) in %s" % (
            detour.pose.x, detour.pose.y, detour.frame_id))

    def _neighbours_for(self, now: float, t_state: float):
        """The neighbours' shared paths in odom, times relative to the state (fleet critic);
        none when the snapshot is stale or map->odom unknown."""
        if self.fleet is None or now - self.fleet[0] > self.p["fleet_timeout"]:
            return []
        m2o = self._map_to_odom(now)
        if m2o is None:
            return []
        o2m = inverse(m2o)
        out = []
        for r in self.fleet[1].robots:
            pts = [(stamp_to_sec(ps.header.stamp), ps.pose.position.x, ps.pose.position.y)
                   for ps in r.predicted_trajectory]
            if not pts:  # no plan shared: it stays where it is
                pts = [(stamp_to_sec(r.header.stamp), r.pose.position.x, r.pose.position.y)]
            radius = max([math.hypot(p.x, p.y) for p in r.footprint.points] + [0.05])
            try:
                out.append(to_planning_frame(r.robot_id, [p[0] for p in pts],
                                             [p[1:] for p in pts], radius, o2m, t_state))
            except ValueError as e:
                self._reject("fleet_invalid", str(e))
        return out

    def _predictions_for(self, t_state: float):
        """The latest forecasts not older than max_age, timed relative to the state."""
        max_age = self.p["predicted_occupancy.max_age"]
        out = [dataclasses.replace(pred, time_offset=t - t_state)
               for t, pred in self.predictions.values() if t - t_state >= -max_age]
        return out or None

    def _map_to_odom(self, now: float) -> Optional[Pose2D]:
        return self.localization.lookup(now)

    def _goal_from_pose(self, msg: PoseStamped) -> NavGoal:
        frame = msg.header.frame_id or self.p["map_frame"]
        if frame not in (self.p["map_frame"], self.p["odom_frame"]):
            raise ValueError("goal frame %r is neither %r nor %r" % (
                frame, self.p["map_frame"], self.p["odom_frame"]))
        return NavGoal(pose_to_pose2d(msg.pose), frame)

    def _on_goal_pose(self, msg: PoseStamped) -> None:
        try:
            goal = self._goal_from_pose(msg)
        except ValueError as e:
            return self._reject("goal_invalid", str(e))
        self._set_goal(goal)
        self.get_logger().info("new goal from goal_pose: (%.2f, %.2f) in %s" % (
            goal.pose.x, goal.pose.y, goal.frame_id))

    def _set_goal(self, goal: NavGoal) -> None:
        if self.goal is not None and self.goal is not goal:
            self.goal.finish(PREEMPTED, "preempted by a new goal")
        self.goal = goal
        self.controller.set_goal(goal.pose, goal.frame_id, self._now())

    # ---------------------------------------------------------------- control cycle
    def _inputs_stale(self, now: float) -> Optional[str]:
        last = self.odom.latest_stamp
        if last is None or now - last > self.p["odom_timeout"]:
            return "odometry"
        if self.last_field_t is None or now - self.last_field_t > self.p["field_timeout"]:
            return "distance field"
        return None

    def _on_field(self, msg: DistanceField) -> None:
        if not self.active:
            return
        if msg.header.frame_id != self.p["odom_frame"]:
            return self._reject("field_frame", "distance field in %r, expected %r" % (
                msg.header.frame_id, self.p["odom_frame"]))
        try:
            field = distance_field_to_grid(msg)
        except ValueError as e:
            return self._reject("field_invalid", str(e))
        t_field = stamp_to_sec(msg.header.stamp)
        if self.last_field_t is not None and t_field < self.last_field_t:
            return self._reject("field_out_of_order", "stamp %.3f older than %.3f" % (
                t_field, self.last_field_t))
        self.last_field_t = t_field
        self.latest_field = (field, msg.header.stamp)
        if self.p["plan_on_field"]:
            self._control(field, msg.header.stamp)

    def _on_loop_timer(self) -> None:
        if not self.active or self.latest_field is None:
            return
        period = 1.0 / self.p["control_rate"]
        if self.last_cycle_t is not None and self._now() - self.last_cycle_t < 0.75 * period:
            return   # a field-triggered cycle just ran
        self._control(*self.latest_field)

    def _control(self, field, input_stamp) -> None:
        now = self._now()
        self.cycle += 1
        self.last_cycle_t = now
        stale = self._inputs_stale(now)
        if stale is not None:
            self.diag.count("stale_stops")
            return self._publish_cycle(self.controller.hold(now, stale), input_stamp)
        t_state, (pose, (v, w)) = self.odom.latest
        m2o = self._map_to_odom(now)
        if m2o is None and self.goal is not None and self.goal.frame_id == self.p["map_frame"]:
            self._reject("no_transform", "no recent %s->%s" % (self.p["map_frame"],
                                                               self.p["odom_frame"]))
        if self.goal is not None:
            self.goal.current_pose = ((compose(m2o, pose), self.p["map_frame"])
                                      if m2o is not None and
                                      self.goal.frame_id == self.p["map_frame"]
                                      else (pose, self.p["odom_frame"]))
            self.goal.speed = v
        solver = self.p["solver"]
        inp = CycleInput(now, RobotState(pose.x, pose.y, pose.yaw, v, w), field, m2o,
                         neighbours=() if solver == "nmpc" else
                         self._neighbours_for(now, t_state),
                         predictions=self._predictions_for(t_state))
        try:
            out = self.controller.step(inp)
        except Exception as e:  # a planner bug must stop the robot, not kill the node
            self.diag.count("planner_exceptions")
            self.get_logger().error("planner failed: %r" % (e,), throttle_duration_sec=2.0)
            self._publish_raw(*self.controller.stop_step(now))
            self.stopping = True
            return self.status_pub.publish(self._status_msg(PlanStatus.STATUS_FAILED,
                                                            input_stamp))
        self._check_motion_model()
        self._check_rollback()
        self._publish_cycle(out, input_stamp)

    def _publish_cycle(self, out, input_stamp) -> None:
        """Everything one controller cycle says: the command, the status and plan, the
        route, diagnostics counters and log lines, and the end of the goal."""
        for name in out.counters:
            self.diag.count(name)
        # the controller reports events (a recovery, an abort), not every cycle: unthrottled;
        # one call site per severity (rclpy refuses a severity change at one call site)
        logger = self.get_logger()
        for level, text in out.log:
            if level == "info":
                logger.info(text)
            elif level == "warn":
                logger.warning(text)
            else:
                logger.error(text)
        if out.route_event.startswith("planned"):
            plan = self.routes.last_plan
            self.diag.set_value("route_plan_ms", "%.1f" % plan.plan_time_ms)
            self.route_pub.publish(self._path_msg(plan.route, self.p["map_frame"]))
        if out.route_event:
            self.diag.set_value("route", out.route_event)
        self.diag.set_value("behavior", out.behavior)
        self.diag.set_value("recoveries", str(out.recoveries))
        moving = out.status in (ctl.OK, ctl.RECOVERING) and out.cmd != (0.0, 0.0)
        self.stopping = not moving
        self._publish_raw(*out.cmd)
        goal = self.goal
        if goal is not None and math.isfinite(out.distance_remaining):
            goal.distance_remaining = out.distance_remaining
            goal.recoveries = out.recoveries
        status = STATUS_CODES[out.status]
        if out.result is not None and out.status in (ctl.OK, ctl.FAILED):
            self._publish_plan(out, status, input_stamp)
        else:
            # turning, recovering, waiting, stopping: where the robot will be is here (the
            # fleet shares it as the intended path)
            stamp = self.get_clock().now()
            if goal is not None and self.odom.latest is not None:
                pose = self.odom.latest[1][0]
                here = np.array([[pose.x, pose.y, pose.yaw]] * (self.p["horizon"] + 1))
                self.plan_pub.publish(trajectory_to_path(
                    here, self.p["odom_frame"], stamp.nanoseconds * 1e-9, self.p["dt"]))
            msg = self._status_msg(status, input_stamp, stamp)
            msg.behavior = out.behavior
            msg.recoveries = int(out.recoveries)
            if math.isfinite(out.distance_remaining):
                msg.distance_to_goal = float(out.distance_remaining)
            self.status_pub.publish(msg)
        if out.status == ctl.RECOVERING:
            self.diag.set_level(DiagnosticStatus.WARN, "recovery: %s" % out.behavior)
        elif out.status == ctl.OK:
            self.diag.set_level(DiagnosticStatus.OK, "tracking goal" if out.behavior !=
                                "rotate_to_heading" else "turning on the spot towards the way")
        if out.outcome is not None and goal is not None:
            if out.outcome.reached:
                self.get_logger().info("goal reached")
            else:
                self.diag.set_level(DiagnosticStatus.WARN, "goal aborted: %s"
                                    % out.outcome.message)
            goal.finish(out.outcome.code, out.outcome.message)
            if self.goal is goal:
                self.goal = None

    def _path_msg(self, xy, frame: str) -> Path:
        msg = Path()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = frame
        for x, y in np.asarray(xy):
            ps = PoseStamped()
            ps.header = msg.header
            ps.pose.position.x, ps.pose.position.y = float(x), float(y)
            ps.pose.orientation.w = 1.0
            msg.poses.append(ps)
        return msg

    # ---------------------------------------------------------------- world-model swaps
    def _on_swap_world_model(self, request, response):
        """Load, verify and probe another artifact, then plan with it (wm_planner.model_swap).
        Synchronous: loading a verified artifact into a warm process takes tens of ms."""
        current = self.models.current
        response.version = ModelSwap.version(current)
        response.previous_version = ("" if self.models.previous is None
                                     else ModelSwap.version(self.models.previous))
        if self.p["solver"] != "mppi":
            response.message = ("swapping needs solver mppi: the CasADi solvers build the "
                                "model into their problem at configure")
            return self._swap_refused(response)
        p = dict(self.p)
        p["world_model_artifact"] = request.artifact
        kg = self.controller.payload_kg
        p["payload_mass"] = -1.0 if kg is None else kg
        try:
            if not request.artifact:
                raise ValueError("no artifact given")
            model = build_motion_model(p)
        except (ValueError, RuntimeError, OSError, KeyError) as e:
            # RuntimeError: wm_world_model.artifact.ArtifactError (checksum, schema, signature)
            response.message = "refused: %s" % e
            return self._swap_refused(response)
        why = probe(model, self.p["dt"], self.p["horizon"])
        if why is not None:
            response.message = "refused: %s" % why
            return self._swap_refused(response)
        self.models.swap(model, self._now())
        self._use_motion_model(model)
        response.success = True
        response.version = ModelSwap.version(model)
        response.previous_version = ModelSwap.version(self.models.previous)
        response.message = "now planning with world model %s (%s kept for rollback)" % (
            response.version, response.previous_version)
        self.diag.count("world_model_swaps")
        self.get_logger().info(response.message)
        return response

    def _swap_refused(self, response):
        response.success = False
        self.diag.count("world_model_swaps_refused")
        self.get_logger().error("world model swap %s" % response.message)
        return response

    def _use_motion_model(self, model) -> None:
        self.controller.use_motion_model(model)
        self._model_failures = model.failures
        self._report_motion_model(model)

    def _report_motion_model(self, model) -> None:
        self.diag.set_value("motion_model", ("%s %s" % (
            model.name, model.version)).strip())

    def _check_rollback(self) -> None:
        why = self.models.check(self._now())
        if why is None:
            return
        self._use_motion_model(self.models.current)
        self.diag.count("world_model_rollbacks")
        self.get_logger().error(why)

    def _check_motion_model(self) -> None:
        """Report world-model predictions that were refused (that batch used kinematics)."""
        model = self.controller.motion_model
        failures = model.failures
        if failures > self._model_failures:
            self.diag.count("world_model_fallbacks", failures - self._model_failures)
            self._model_failures = failures
            self.get_logger().log(
                "world model prediction refused (%s): planning on kinematics for this cycle"
                % model.last_error, LoggingSeverity.WARN,
                throttle_duration_sec=2.0)

    def _on_watchdog(self) -> None:
        if not self.active:
            return
        now = self._now()
        self._supervise_action(now)
        stale = self._inputs_stale(now)
        if stale is not None:
            self.diag.set_level(DiagnosticStatus.WARN, "stale input: " + stale)
            if self.goal is not None or not self.stopped:
                self.get_logger().log("stale %s: stopping" % stale, LoggingSeverity.WARN,
                                      throttle_duration_sec=2.0)
                self._publish_cycle(self.controller.hold(now, stale), None)
        elif self.last_cmd_t is not None and now - self.last_cmd_t > self.p["field_timeout"]:
            # inputs fresh but no cycle ran (e.g. rejected fields): never leave an old command
            self._publish_stop()
        elif self.stopping:
            # the controlled stop's next step; zero, continuously, once stopped
            v, w = self.controller.stop_step(now)
            self._publish_raw(v, w)

    # ---------------------------------------------------------------- outputs
    def _publish_raw(self, v: float, w: float) -> None:
        if self.p["cmd_vel_stamped"]:
            msg = TwistStamped()
            msg.header.stamp = self.get_clock().now().to_msg()
            msg.header.frame_id = self.p["base_frame"]
            tw = msg.twist
        else:
            msg = tw = Twist()
        tw.linear.x, tw.angular.z = v, w
        self.cmd_pub.publish(msg)
        self.last_cmd_t = self._now()
        self.stopped = v == 0.0 and w == 0.0

    def _publish_stop(self) -> None:
        """Start (or continue) a controlled stop at the deceleration limit: one step now, the
        rest from the watchdog, then zero continuously."""
        self.stopping = True
        v, w = self.controller.stop_step(self._now())
        self._publish_raw(v, w)

    def _status_msg(self, status: int, input_stamp, stamp=None) -> PlanStatus:
        """A PlanStatus stamped now (or at `stamp`, a rclpy Time) in the odom frame."""
        msg = PlanStatus()
        msg.header.stamp = (stamp or self.get_clock().now()).to_msg()
        msg.header.frame_id = self.p["odom_frame"]
        msg.status = status
        msg.solver = self.p["solver"]
        if input_stamp is not None:
            msg.input_stamp = input_stamp
        return msg

    def _publish_plan(self, out, status: int, input_stamp) -> None:
        result = out.result
        stamp = self.get_clock().now()
        path = trajectory_to_path(result.trajectory, self.p["odom_frame"],
                                  stamp.nanoseconds * 1e-9, self.p["dt"])
        self.plan_pub.publish(path)
        msg = self._status_msg(status, input_stamp, stamp)
        msg.cost = float(result.cost)
        msg.iterations = int(result.iterations)
        msg.num_samples = int(self.p["num_samples"])
        msg.solve_time_ms = float(result.solve_time_ms)
        msg.distance_to_goal = float(out.distance_remaining)
        msg.behavior = out.behavior
        msg.recoveries = int(out.recoveries)
        msg.predicted_trajectory = path
        self.status_pub.publish(msg)
        self.diag.set_value("solve_time_ms", "%.2f" % result.solve_time_ms)
        if self.p["sampled_trajectories_shown"] > 0 and self.cycle % 5 == 0:
            self.marker_pub.publish(self._markers(result, stamp.to_msg()))

    def _markers(self, result, stamp) -> MarkerArray:
        m = Marker()
        m.header.frame_id = self.p["odom_frame"]
        m.header.stamp = stamp
        m.ns, m.id, m.type, m.action = "sampled", 0, Marker.LINE_LIST, Marker.ADD
        m.scale.x = 0.01
        m.color.r, m.color.g, m.color.b, m.color.a = 0.2, 0.6, 1.0, 0.4
        m.pose.orientation.w = 1.0
        pts = []
        for traj in list(result.sampled_trajectories)[: self.p["sampled_trajectories_shown"]]:
            for a, b in zip(traj[:-1], traj[1:]):
                pts.append(Point(x=float(a[0]), y=float(a[1])))
                pts.append(Point(x=float(b[0]), y=float(b[1])))
        m.points = pts
        return MarkerArray(markers=[m])

    # ---------------------------------------------------------------- actions
    def _on_action_goal(self, request) -> int:
        try:
            self._goal_from_pose(request.pose)
        except ValueError as e:
            self._reject("goal_invalid", str(e))
            return GoalResponse.REJECT
        if request.behavior_tree:
            self.get_logger().warning("navigate_to_pose: behavior_tree %r ignored (this "
                                      "navigator has no behaviour tree)" % request.behavior_tree,
                                      throttle_duration_sec=10.0)
        return GoalResponse.ACCEPT if self.active else GoalResponse.REJECT

    def _on_action_accepted(self, handle) -> None:
        goal = self._goal_from_pose(handle.request.pose)
        goal.handle = handle
        goal.started = self._now()
        self._set_goal(goal)
        self.get_logger().info("navigate_to_pose: (%.2f, %.2f) in %s" % (
            goal.pose.x, goal.pose.y, goal.frame_id))
        handle.execute()

    def _follow_target(self, path: Path):
        """(xy (N, 2), frame, end Pose2D) of a FollowPath path; ValueError if unusable."""
        if not path.poses:
            raise ValueError("the path is empty")
        frame = path.header.frame_id or path.poses[-1].header.frame_id or self.p["map_frame"]
        if frame not in (self.p["map_frame"], self.p["odom_frame"]):
            raise ValueError("path frame %r is neither %r nor %r" % (
                frame, self.p["map_frame"], self.p["odom_frame"]))
        xy = np.array([[ps.pose.position.x, ps.pose.position.y] for ps in path.poses])
        if not np.all(np.isfinite(xy)):
            raise ValueError("the path has non-finite positions")
        last = path.poses[-1].pose
        q = last.orientation
        if math.isfinite(q.w) and (q.x * q.x + q.y * q.y + q.z * q.z + q.w * q.w) > 0.5:
            end = pose_to_pose2d(last)
        elif xy.shape[0] >= 2:   # no orientation given: arrive facing along the last leg
            d = xy[-1] - xy[-2]
            end = Pose2D(xy[-1, 0], xy[-1, 1], math.atan2(d[1], d[0]))
        else:
            end = Pose2D(xy[-1, 0], xy[-1, 1], 0.0)
        return xy, frame, end

    def _on_follow_goal(self, request) -> int:
        if self.routes is None:
            self._reject("follow_path", "following a path needs global_route true")
            return GoalResponse.REJECT
        try:
            self._follow_target(request.path)
        except ValueError as e:
            self._reject("follow_path", str(e))
            return GoalResponse.REJECT
        return GoalResponse.ACCEPT if self.active else GoalResponse.REJECT

    def _on_follow_accepted(self, handle) -> None:
        xy, frame, end = self._follow_target(handle.request.path)
        now = self._now()
        old = self.goal
        new = self.controller.follow_path(xy, frame, end, now)
        goal = NavGoal(end, frame, handle, action="follow")
        goal.started = now if new or old is None else old.started
        if old is not None:
            if not new:   # the same end: a navigator's replan, the robot goes on
                goal.distance_remaining, goal.recoveries = (old.distance_remaining,
                                                            old.recoveries)
                goal.current_pose, goal.speed = old.current_pose, old.speed
            old.finish(PREEMPTED, "preempted by a new goal")
        self.goal = goal
        if new:
            self.get_logger().info("follow_path: %d poses to (%.2f, %.2f) in %s" % (
                xy.shape[0], end.x, end.y, frame))
        handle.execute()

    async def _execute(self, handle):
        # A coroutine: it waits for the control cycle to finish the goal without holding an
        # executor thread, so the node runs on a single-threaded executor (rclpy's
        # multi-threaded one delayed callbacks by up to a second in our measurements).
        goal = self.goal if self.goal is not None and self.goal.handle is handle else None
        action = FollowPath if hasattr(handle.request, "path") else NavigateToPose
        result = action.Result()
        if goal is None:
            handle.abort()
            set_error(result, CODES[action.__name__]["UNKNOWN"], "preempted before start")
            return result
        await goal.done
        set_error(result, goal.error_code, goal.error_msg)
        if goal.outcome == ctl.REACHED:
            handle.succeed()
        elif goal.outcome == ctl.CANCELED and handle.is_cancel_requested:
            handle.canceled()
        else:
            handle.abort()
        return result

    def _supervise_action(self, now: float) -> None:
        """Cancel, timeout and feedback of the navigate_to_pose or follow_path goal (from the
        watchdog)."""
        goal = self.goal
        if goal is None or goal.handle is None:
            return
        if goal.handle.is_cancel_requested:
            goal.finish(ctl.CANCELED, "canceled")
            self.goal = None
            self.controller.cancel()
            self._publish_stop()
        elif now - goal.last_feedback >= 0.2:
            goal.last_feedback = now
            try:
                goal.handle.publish_feedback(self._feedback(goal))
            except Exception:  # shutting down: nothing left to report to
                pass

    def _feedback(self, goal: NavGoal):
        d = goal.distance_remaining
        if goal.action == "follow":
            fb = FollowPath.Feedback()
            if hasattr(fb, "distance_to_goal"):   # Humble's fields (newer: tracking_feedback)
                fb.distance_to_goal = float(d) if math.isfinite(d) else 0.0
                fb.speed = float(goal.speed)
            return fb
        fb = NavigateToPose.Feedback()
        if goal.current_pose is not None:
            fb.current_pose.header.frame_id = goal.current_pose[1]
            fb.current_pose.header.stamp = self.get_clock().now().to_msg()
            fb.current_pose.pose = pose2d_to_pose(goal.current_pose[0])
        elapsed = self._now() - goal.started
        fb.navigation_time = Duration(seconds=elapsed).to_msg()
        fb.distance_remaining = float(d) if math.isfinite(d) else 0.0
        fb.number_of_recoveries = int(goal.recoveries)
        if math.isfinite(d) and self.p["v_max"] > 0:
            fb.estimated_time_remaining = Duration(seconds=d / self.p["v_max"]).to_msg()
        return fb

    def _on_path_goal(self, request) -> int:
        return GoalResponse.ACCEPT if self.active else GoalResponse.REJECT

    def _compute_path(self, handle):
        """ComputePathToPose: our route as a planner server (the map, the live layer and
        the footprint the robot's own route uses; the robot's route is not changed)."""
        req = handle.request
        result = ComputePathToPose.Result()
        t0 = self._now()

        def fail(name: str, why: str):
            set_error(result, ROUTE[name], why)
            self.diag.count("compute_path_failures")
            self.get_logger().warning("compute_path_to_pose: %s" % why,
                                      throttle_duration_sec=2.0)
            handle.abort()
            return result

        if self.routes is None:
            return fail("INVALID_PLANNER", "global_route is false: no planner")
        m2o = self._map_to_odom(self._now())
        try:
            goal = self._to_map(req.goal, m2o)
            if req.use_start:
                start = self._to_map(req.start, m2o)
            elif m2o is None or self.odom.latest is None:
                return fail("TF_ERROR", "no robot pose in %s" % self.p["map_frame"])
            else:
                start = compose(m2o, self.odom.latest[1][0])
        except ValueError as e:
            return fail("TF_ERROR" if "no transform" in str(e) else "UNKNOWN", str(e))
        plan = self.routes.plan_once((start.x, start.y), (goal.x, goal.y))
        if not plan.ok:
            reason = plan.reason
            if "outside the map" in reason:
                name = "START_OUTSIDE_MAP" if reason.startswith("start") else \
                    "GOAL_OUTSIDE_MAP"
            elif "inside an obstacle" in reason:
                name = "START_OCCUPIED" if reason.startswith("start") else "GOAL_OCCUPIED"
            elif reason == "no map":
                name = "INVALID_PLANNER"
            else:
                name = "NO_VALID_PATH"
            return fail(name, reason)
        route = plan.route
        yaw = np.arctan2(np.diff(route[:, 1]), np.diff(route[:, 0]))
        yaw = np.append(yaw, goal.yaw)
        stamp = self.get_clock().now()
        result.path = trajectory_to_path(np.column_stack([route, yaw]), self.p["map_frame"],
                                         stamp.nanoseconds * 1e-9, 0.0)
        result.planning_time = Duration(seconds=max(self._now() - t0, 0.0)).to_msg()
        set_error(result, ROUTE["NONE"], "")
        handle.succeed()
        return result

    def _to_map(self, msg: PoseStamped, m2o: Optional[Pose2D]) -> Pose2D:
        """A pose given in map or odom (empty: map) as a map-frame Pose2D."""
        frame = msg.header.frame_id or self.p["map_frame"]
        pose = pose_to_pose2d(msg.pose)
        if frame == self.p["map_frame"]:
            return pose
        if frame != self.p["odom_frame"]:
            raise ValueError("pose frame %r is neither %r nor %r" % (
                frame, self.p["map_frame"], self.p["odom_frame"]))
        if m2o is None:
            raise ValueError("no transform %s->%s" % (self.p["map_frame"], frame))
        return compose(m2o, pose)

    # ---------------------------------------------------------------- parameters
    def _on_set_parameters(self, params) -> SetParametersResult:
        """Validate every change; while configured, apply optimizer parameters at once and
        refuse the others (frames, topics, timers, the world model need a reconfigure)."""
        specs = {s.name: s for s in PLANNER_PARAMS}
        changes = {}
        for prm in params:
            spec = specs.get(prm.name)
            if spec is None:
                continue   # use_sim_time, autostart, ...: not ours to check
            value = prm.value
            if isinstance(value, array.array):   # rclpy's type for numeric arrays
                value = list(value)
            why = check_value(spec, value)
            if why is not None:
                return SetParametersResult(successful=False,
                                           reason="%s: %s" % (prm.name, why))
            changes[prm.name] = value
        if not changes or not self.configured:
            return SetParametersResult(successful=True)
        fixed = sorted(n for n in changes if not is_live_param(n))
        if fixed:
            return SetParametersResult(
                successful=False, reason="%s can only change while unconfigured (cleanup, "
                "set, configure)" % ", ".join(fixed))
        try:
            self.controller.reconfigure(changes)
        except (ValueError, KeyError, TypeError, RuntimeError) as e:
            return SetParametersResult(successful=False, reason=str(e))
        self.p = dict(self.controller.p)
        self.get_logger().info("parameters changed at run time: %s" % ", ".join(
            "%s=%r" % kv for kv in sorted(changes.items())))
        return SetParametersResult(successful=True)


def main(args=None):
    return lifecycle.run(PlannerNode, args=args)


if __name__ == "__main__":
    main()
