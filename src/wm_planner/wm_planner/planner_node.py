"""Planner node: a thin rclpy adapter around the control cycle (wm_planner.controller).

In: odom (nav_msgs/Odometry), distance_field (wm_msgs/DistanceField, from perception),
goal_pose (geometry_msgs/PoseStamped), localization_pose (PoseWithCovarianceStamped, for
map->odom when tf2 is not available), and perception's learned
forecasts predicted_occupancy_05s / _10s (nav_msgs/OccupancyGrid, percent) when the
predicted_occupancy critic is composed, and payload (std_msgs/Float32 kg, latched) for the world
model; with global_route, plan (an external route) and the map; fleet/neighbours and
fleet/yield_goal from the fleet client (wm_planner.planner_inputs).
The motion model is the world model (`world_model_artifact`) or unicycle kinematics; a world
model prediction that is non-finite or out of bounds is counted (world_model_fallbacks) and
that cycle plans on kinematics. ~/swap_world_model (wm_msgs/SwapWorldModel) swaps it while
running, with a probe before and a rollback after (wm_planner.model_swap).
Out: cmd_vel (Twist or TwistStamped), local_plan (nav_msgs/Path), plan_status
(wm_msgs/PlanStatus), markers (visualization_msgs/MarkerArray), global_plan, /diagnostics
(wm_planner.planner_outputs).
Actions, Nav2's types where nav2_msgs is installed (else wm_msgs' stand-ins, the same fields;
wm_common.ros.nav2): navigate_to_pose (NavigateToPose: drive to a pose on our route),
follow_path (FollowPath: the MPC as a controller server, the path as the route until the goal
ends; a new path to the same end replaces the route without a restart, as bt_navigator
replans), compute_path_to_pose (ComputePathToPose: our route as a planner server). Results
carry Nav2's error codes where the installed type has them (Jazzy on; Humble's are empty)
(wm_planner.nav2_actions; the goal bookkeeping is wm_planner.nav_goal).

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
the others while unconfigured (wm_planner.params.check_changes).
"""
from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticStatus
from rcl_interfaces.msg import SetParametersResult
from rclpy.logging import LoggingSeverity

from wm_common.map_io import MapError, read_map
from wm_common.ros import lifecycle
from wm_common.ros.diagnostics import DiagnosticsReporter
from wm_common.ros.localization import MapToOdom, resolve_use_tf
from wm_common.ros.nav2 import PACKAGE
from wm_common.ros.params import declare_params, read_params
from wm_msgs.srv import SwapWorldModel
from wm_planner.controller import Controller, CycleInput
from wm_planner.inputs import InputState
from wm_planner.model_swap import ModelSwap, load_candidate
from wm_planner.nav2_actions import Nav2Actions
from wm_planner.nav_goal import DEACTIVATED, GoalTracker
from wm_planner.params import PLANNER_PARAMS, check_changes
from wm_planner.planner_inputs import PlannerInputs
from wm_planner.planner_outputs import PlannerOutputs
from wm_world_model.state import RobotState

DIAG_LEVELS = {"ok": DiagnosticStatus.OK, "warn": DiagnosticStatus.WARN}


class PlannerNode(lifecycle.ManagedNode):
    """Composes, at configure: the controller, what it has received (`inputs`, an InputState),
    its goal (`goals`, a GoalTracker), the subscriptions (`subs`), the publishers (`out`), the
    action servers (`actions`), map->odom (`localization`) and the model swap (`models`)."""

    def __init__(self, **kwargs):
        super().__init__("planner", **kwargs)
        declare_params(self, PLANNER_PARAMS)
        self.configured = False
        self.add_on_set_parameters_callback(self._on_set_parameters)

    def now(self) -> float:
        """Node-clock seconds (sim time under use_sim_time)."""
        return self.get_clock().now().nanoseconds * 1e-9

    # ---------------------------------------------------------------- lifecycle
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
        self.inputs = InputState()
        self.goals = GoalTracker(self.controller)
        self.stopping = True   # the watchdog steps a controlled stop / publishes zero
        self.cycle = 0
        self.last_cycle_t = None
        self.out = PlannerOutputs(self)
        self.diag = DiagnosticsReporter(self, "planner")
        model = self.controller.motion_model
        self._report_motion_model(model)
        if model.name != "kinematic":
            self.get_logger().info("motion model: world model %s" % model.version)
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
        self.subs = PlannerInputs(self)
        # map->odom: tf2 (AMCL, slam_toolbox, the simulator) or localization_pose + odometry
        self.localization = MapToOdom(
            self, p["map_frame"], p["odom_frame"], use_tf, self.diag,
            max_travel=p["localization_max_travel"], max_turn=p["localization_max_turn"],
            odom_timeout=p["odom_timeout"])
        self.watchdog = self.create_timer(1.0 / p["watchdog_rate"], self._on_watchdog)
        self.loop_timer = self.create_timer(1.0 / p["control_rate"], self._on_loop_timer)
        self.actions = Nav2Actions(self)
        self.get_logger().info(
            "configured: K=%d H=%d dt=%.2f, map->odom from %s, cmd_vel as %s, actions as %s" % (
                p["num_samples"], p["horizon"], p["dt"], self.localization.source,
                self.out.cmd_type.__name__, PACKAGE))
        self.configured = True
        return lifecycle.SUCCESS

    def on_activate(self, state):
        self.controller.limiter.reset()   # the base is assumed at rest when control starts
        self.stopping = True
        return super().on_activate(state)

    def on_deactivate(self, state):
        # An operator's deactivate: zero now, while the publisher is still active (the ramp
        # would outlive it); the base's own cmd_vel timeout is the last resort anyway.
        self.out.command(0.0, 0.0, self.now())
        self.goals.end(DEACTIVATED, "planner deactivated")
        return super().on_deactivate(state)

    def on_cleanup(self, state):
        self.subs.destroy()
        self.localization.destroy()
        self.destroy_timer(self.watchdog)
        self.destroy_timer(self.loop_timer)
        self.actions.destroy()
        self.destroy_service(self.swap_srv)
        self.configured = False
        self.diag.destroy()
        self.out.destroy()
        return lifecycle.SUCCESS

    def on_shutdown(self, state):
        return lifecycle.SUCCESS

    # ---------------------------------------------------------------- control cycle
    def _stale(self, now: float):
        return self.inputs.stale(now, self.p["odom_timeout"], self.p["field_timeout"])

    def _on_loop_timer(self) -> None:
        if not self.active or self.inputs.latest_field is None:
            return
        period = 1.0 / self.p["control_rate"]
        if self.last_cycle_t is not None and self.now() - self.last_cycle_t < 0.75 * period:
            return   # a field-triggered cycle just ran
        self.control(*self.inputs.latest_field)

    def control(self, field, input_stamp) -> None:
        """One control cycle on `field` (a Grid2D in odom; its stamp message)."""
        now = self.now()
        self.cycle += 1
        self.last_cycle_t = now
        stale = self._stale(now)
        if stale is not None:
            self.diag.count("stale_stops")
            return self._publish_cycle(self.controller.hold(now, stale), input_stamp)
        p, goal = self.p, self.goals.current
        t_state, (pose, (v, w)) = self.inputs.odom.latest
        m2o = self.localization.lookup(now)
        if m2o is None and goal is not None and goal.frame_id == p["map_frame"]:
            self.diag.reject("no_transform", "no recent %s->%s" % (p["map_frame"],
                                                                   p["odom_frame"]))
        if goal is not None:
            goal.observe(pose, v, m2o, p["map_frame"], p["odom_frame"])
        inp = CycleInput(now, RobotState(pose.x, pose.y, pose.yaw, v, w), field, m2o,
                         neighbours=() if p["solver"] == "nmpc" else
                         self.subs.neighbours(now, t_state),
                         predictions=self.inputs.predictions_for(
                             t_state, p["predicted_occupancy.max_age"]))
        try:
            out = self.controller.step(inp)
        except Exception as e:  # a planner bug must stop the robot, not kill the node
            self.diag.count("planner_exceptions")
            self.get_logger().error("planner failed: %r" % (e,), throttle_duration_sec=2.0)
            self.out.command(*self.controller.stop_step(now), self.controller.command_time)
            self.stopping = True
            return self.out.failed(input_stamp)
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
            self.out.route(plan.route, self.p["map_frame"])
        if out.route_event:
            self.diag.set_value("route", out.route_event)
        self.diag.set_value("behavior", out.behavior)
        self.diag.set_value("recoveries", str(out.recoveries))
        self.stopping = not out.moving
        self.out.command(*out.cmd, self.controller.command_time)
        goal = self.goals.current
        if goal is not None:
            goal.track(out.distance_remaining, out.recoveries)
        latest = self.inputs.odom.latest
        self.out.cycle(out, input_stamp, None if goal is None or latest is None
                       else latest[1][0])
        health = out.health()
        if health is not None:
            self.diag.set_level(DIAG_LEVELS[health[0]], health[1])
        if out.outcome is not None and goal is not None:
            if out.outcome.reached:
                self.get_logger().info("goal reached")
            else:
                self.diag.set_level(DiagnosticStatus.WARN, "goal aborted: %s"
                                    % out.outcome.message)
            self.goals.ended(goal, out.outcome)

    def publish_stop(self) -> None:
        """Start (or continue) a controlled stop at the deceleration limit: one step now, the
        rest from the watchdog, then zero continuously."""
        self.stopping = True
        self.out.command(*self.controller.stop_step(self.now()), self.controller.command_time)

    def _on_watchdog(self) -> None:
        if not self.active:
            return
        now = self.now()
        self.actions.supervise(now)
        stale = self._stale(now)
        if stale is not None:
            self.diag.set_level(DiagnosticStatus.WARN, "stale input: " + stale)
            if self.goals.current is not None or not self.out.stopped:
                self.get_logger().log("stale %s: stopping" % stale, LoggingSeverity.WARN,
                                      throttle_duration_sec=2.0)
                self._publish_cycle(self.controller.hold(now, stale), None)
        elif self.out.last_cmd_t is not None and now - self.out.last_cmd_t > \
                self.p["field_timeout"]:
            # inputs fresh but no cycle ran (e.g. rejected fields): never leave an old command
            self.publish_stop()
        elif self.stopping:
            # the controlled stop's next step; zero, continuously, once stopped
            self.out.command(*self.controller.stop_step(now), self.controller.command_time)

    # ---------------------------------------------------------------- world-model swaps
    def _on_swap_world_model(self, request, response):
        """Load, verify and probe another artifact, then plan with it (wm_planner.model_swap).
        Synchronous: loading a verified artifact into a warm process takes tens of ms."""
        response.version, response.previous_version = self.models.versions()
        model, why = load_candidate(self.p, request.artifact, self.controller.payload_kg)
        if model is None:
            response.success, response.message = False, why
            self.diag.count("world_model_swaps_refused")
            self.get_logger().error("world model swap %s" % response.message)
            return response
        self.models.swap(model, self.now())
        self._use_motion_model(model)
        response.success = True
        response.version, response.previous_version = self.models.versions()
        response.message = "now planning with world model %s (%s kept for rollback)" % (
            response.version, response.previous_version)
        self.diag.count("world_model_swaps")
        self.get_logger().info(response.message)
        return response

    def _use_motion_model(self, model) -> None:
        self.controller.use_motion_model(model)
        self._report_motion_model(model)

    def _report_motion_model(self, model) -> None:
        self.diag.set_value("motion_model", ("%s %s" % (model.name, model.version)).strip())

    def _check_rollback(self) -> None:
        why = self.models.check(self.now())
        if why is None:
            return
        self._use_motion_model(self.models.current)
        self.diag.count("world_model_rollbacks")
        self.get_logger().error(why)

    def _check_motion_model(self) -> None:
        """Report world-model predictions that were refused (that batch used kinematics)."""
        model = self.controller.motion_model
        refused = self.models.fallbacks(model)
        if refused:
            self.diag.count("world_model_fallbacks", refused)
            self.get_logger().log(
                "world model prediction refused (%s): planning on kinematics for this cycle"
                % model.last_error, LoggingSeverity.WARN, throttle_duration_sec=2.0)

    # ---------------------------------------------------------------- parameters
    def _on_set_parameters(self, params) -> SetParametersResult:
        """Validate every change; while configured, apply optimizer parameters at once and
        refuse the others (frames, topics, timers, the world model need a reconfigure)."""
        changes, why = check_changes(((prm.name, prm.value) for prm in params),
                                     self.configured)
        if why is not None:
            return SetParametersResult(successful=False, reason=why)
        if not changes or not self.configured:
            return SetParametersResult(successful=True)
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
