"""The control cycle: one home for everything between "where am I, what do I see" and the
command to the base.

    goal check -> route -> progress check / recoveries -> turn on the spot -> solve -> limiter

"solve" is the Solver the `solver` parameter chose (wm_planner.solver: MPPI, NMPC or the
hybrid), called the same way whichever it is.

The planner node (wm_planner.planner_node), the in-process episodes of the evaluation
(wm_eval.episode) and the data generator (wm_sim.datagen) all call `Controller.step`;
none keeps a copy of the cycle. Everything is built from the planner's flat parameter dict
(wm_planner.params) in one place, and `reconfigure` applies a live change to every part at
once (MPPI, the NMPC of solver nmpc/hybrid, the turn on the spot, the limiter's limits, the
progress checker and the recoveries).

One notion of the way to the goal: the route (global planner on the map plus the live
obstacle layer, or on the live layer alone without a map), the MPC's navigation function
(seeded along the route, with the route's clearance and inflation) and the turn on the spot
(down that same navigation function) agree on the way round every obstacle by construction.
Decisions that could flip have hysteresis: the route only switches sides for a clearly
shorter way (route_switch_margin), the turn on the spot enters and exits at different angles.

Progress and recoveries, as Nav2's controller server and behaviour tree: when the robot has
not moved `required_movement_radius` within `movement_time_allowance` (or the route has
found no way for that long), the next recovery of `recovery_behaviors` runs (bounded, in the
field's free space, through the limiter; reroute, where listed, is tried first at every
failure, since each run closes one more squeeze); when they are used up the goal aborts with a
reason: no_way (the route finds no way: a gap narrower than the body), blocked (the way is
blocked by obstacles or robots), no_progress, timeout (navigate_timeout), stale_inputs.
Commands always leave through the command limiter (finite, limits, a_max from the previous).

Plain Python (no rclpy); Python 3.8 compatible.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from wm_common.footprint import Footprint
from wm_common.geometry import Pose2D, compose, inverse, wrap_angle
from wm_common.grid import Grid2D
from wm_common.map_io import OccupancyMap

from wm_world_model.state import RobotState
from .command_limiter import CommandLimiter
from .configure import build_footprint, build_optimizer, build_rotate
from .goal_checker import goal_reached
from .models import STATUS_COLLISION, Goal, PlanResult
from .nmpc import build_nmpc
from .progress_checker import ProgressChecker
from .recoveries import Recovery, RecoveryContext, build_recoveries
from .route_manager import RouteManager
from .solver import Solver, build_solver
from .unknown_space import unknown_as_obstacles

# How a goal ends (GoalOutcome.code); the node maps them onto the action's error codes.
REACHED = "reached"
NO_WAY = "no_way"
BLOCKED = "blocked"
NO_PROGRESS = "no_progress"
TIMEOUT = "timeout"
STALE_INPUTS = "stale_inputs"
CANCELED = "canceled"

# What a cycle did (CycleOutput.status).
IDLE = "idle"
OK = "ok"
GOAL_REACHED = "goal_reached"
FAILED = "failed"            # this cycle's solve failed: a controlled stop
RECOVERING = "recovering"
WAITING = "waiting"          # at a fleet passing place
ABORTED = "aborted"
STALE = "stale_inputs"
NO_TRANSFORM = "no_transform"

# Neighbours within this distance make a stall "blocked" rather than "no progress" [m].
BLOCKING_NEIGHBOUR = 2.0
# The robot's own recent path, for the back_up recovery: a point every TRAIL_STEP [m],
# TRAIL_LENGTH [m] of it.
TRAIL_STEP = 0.05
TRAIL_LENGTH = 3.0


@dataclass(frozen=True)
class GoalOutcome:
    code: str
    message: str = ""

    @property
    def reached(self) -> bool:
        return self.code == REACHED


@dataclass
class Target:
    """A pose to drive to, in `frame` (the map frame or the odom frame)."""

    pose: Pose2D
    frame: str


@dataclass
class CycleInput:
    """One cycle's inputs, in the odom frame (map->odom for map-frame goals and routes)."""

    now: float
    state: RobotState
    field: Optional[Grid2D]
    map_to_odom: Optional[Pose2D] = None
    neighbours: Sequence[Any] = ()
    predictions: Optional[Sequence[Any]] = None


@dataclass
class CycleOutput:
    cmd: Tuple[float, float]
    status: str
    behavior: str = ""                 # mppi / nmpc / hybrid / rotate_to_heading / a recovery
    result: Optional[PlanResult] = None
    route: Optional[np.ndarray] = None  # odom frame
    route_event: str = ""
    outcome: Optional[GoalOutcome] = None   # the goal ended in this cycle
    distance_remaining: float = math.nan
    recoveries: int = 0                # recoveries run for the current goal
    counters: List[str] = field(default_factory=list)   # diagnostics counters to bump
    log: List[Tuple[str, str]] = field(default_factory=list)   # (level, message)

    @property
    def moving(self) -> bool:
        """Whether the command drives the robot on (else it is a step of a controlled stop,
        which the node's watchdog goes on with between cycles)."""
        return self.status in (OK, RECOVERING) and self.cmd != (0.0, 0.0)

    def health(self) -> Optional[Tuple[str, str]]:
        """(level 'ok' or 'warn', message) this cycle reports in the diagnostics, or None (it
        leaves the last one)."""
        if self.status == RECOVERING:
            return "warn", "recovery: %s" % self.behavior
        if self.status == OK:
            return "ok", ("tracking goal" if self.behavior != "rotate_to_heading" else
                          "turning on the spot towards the way")
        return None


class Controller:
    """The planner's control cycle for one robot (see the module docstring).

    params: the planner's flat parameter dict (wm_planner.configure.planner_params or the
    node's declared parameters). motion_model: an already loaded one (None: built from the
    parameters). map_frame / odom_frame: from the parameters.
    """

    def __init__(self, params: Mapping[str, Any], motion_model=None):
        self.p: Dict[str, Any] = dict(params)
        p = self.p
        self.payload_kg: Optional[float] = None if p.get("payload_mass", -1.0) < 0 else \
            float(p["payload_mass"])
        self._build(p, motion_model)
        self.limiter = CommandLimiter(self.optimizer.limits, 1.0 / p["control_rate"])
        self.routes: Optional[RouteManager] = None
        if p["global_route"]:
            self.routes = RouteManager(
                p["robot_radius"], replan_period=p["replan_period"],
                external_timeout=p["external_path_timeout"],
                planning_resolution=p["route_resolution"], inflation=p["route_inflation"],
                map_frame=p["map_frame"], odom_frame=p["odom_frame"],
                switch_margin=p["route_switch_margin"],
                without_map=p["route_without_map"])
        self.goal: Optional[Target] = None
        self.detour: Optional[Target] = None
        self._robot_map: Optional[Tuple[float, float]] = None   # the robot, map frame
        self.trail: List[Tuple[float, float]] = []   # its own recent path (odom)
        self._reset_goal_state(0.0)

    # ------------------------------------------------------------------ building
    def _build(self, p: Mapping[str, Any], motion_model) -> None:
        """Every part that depends on live parameters, built together (raises ValueError and
        friends with the reason; nothing is replaced then)."""
        footprint = build_footprint(p)
        optimizer = build_optimizer(p, motion_model=motion_model)
        nmpc = build_nmpc(p, optimizer.motion_model)
        rotate = build_rotate(p)
        progress = ProgressChecker(p["progress_checker.required_movement_radius"],
                                   p["progress_checker.movement_time_allowance"])
        recoveries = build_recoveries(p["recovery_behaviors"], p, self._clear_memory,
                                      self._reroute)
        self.footprint: Footprint = footprint
        self.optimizer, self.nmpc, self.rotate = optimizer, nmpc, rotate
        self.solver: Solver = build_solver(p, optimizer, nmpc)
        self.progress, self.recoveries = progress, recoveries
        self._apply_payload()

    def reconfigure(self, changes: Mapping[str, Any]) -> None:
        """Apply parameter changes at run time to every part (the motion model and the
        limiter's history are kept; the NMPC, whose problem holds limits and weights, is
        rebuilt). Raises (nothing changes) when the new set does not build."""
        new_p = dict(self.p)
        new_p.update(changes)
        old = (self.footprint, self.optimizer, self.nmpc, self.solver, self.rotate,
               self.progress, self.recoveries)
        try:
            self._build(new_p, self.optimizer.motion_model)
        except Exception:
            (self.footprint, self.optimizer, self.nmpc, self.solver, self.rotate,
             self.progress, self.recoveries) = old
            raise
        self.p = new_p
        self.limiter.limits = self.optimizer.limits
        if self.routes is not None:
            self.routes.switch_margin = float(new_p["route_switch_margin"])
        if self.goal is not None:
            self.solver.reset()

    def use_motion_model(self, model) -> None:
        """Plan with another motion model (a world-model swap or rollback): the MPPI and, with
        solver nmpc/hybrid, the NMPC (the CasADi form of the same model)."""
        self.optimizer = build_optimizer(self.p, motion_model=model)
        self.nmpc = build_nmpc(self.p, model)
        self.solver = build_solver(self.p, self.optimizer, self.nmpc)
        self.limiter.limits = self.optimizer.limits
        self._apply_payload()

    @property
    def motion_model(self):
        return self.optimizer.motion_model

    def set_payload(self, kg: Optional[float]) -> None:
        self.payload_kg = kg
        self._apply_payload()

    def _apply_payload(self) -> None:
        if self.payload_kg is not None:
            self.optimizer.motion_model.set_payload(self.payload_kg)
        if self.nmpc is not None and self.payload_kg is not None:
            self.nmpc.set_payload(self.payload_kg)

    def set_map(self, static_map: OccupancyMap) -> None:
        if self.routes is not None:
            self.routes.set_map(static_map)

    def _reroute(self) -> Optional[str]:
        """The reroute recovery (wm_planner.recoveries.Reroute)."""
        if self.routes is None or self._robot_map is None:
            return "no route"
        point = self.routes.avoid_narrowest(self._robot_map)
        if point is None:
            return "no narrow passage ahead with another way round"
        self.optimizer.reset()
        return None

    def _clear_memory(self) -> None:
        if self.routes is not None:
            self.routes.clear_memory()
        self.solver.reset()

    # ------------------------------------------------------------------ goals
    def _reset_goal_state(self, now: float) -> None:
        self.goal_started = now
        self.recovery_ended = now      # the last recovery's end (or the goal's start)
        self.recovery: Optional[Recovery] = None
        self.recoveries_used = 0
        self.recovery_index = 0
        self.reroutes_used = 0
        self.stale_since: Optional[float] = None
        self._route_failure = ""       # the last route failure logged
        self.collisions_seen = 0       # cycles since the last progress whose plan collided
        self.last_recovery = ""

    def set_goal(self, pose: Pose2D, frame: str, now: float) -> None:
        """A new goal (replaces the current one without an outcome: the caller ends it)."""
        self.goal = Target(pose, frame)
        self.detour = None
        self._reset_goal_state(now)
        self.progress.reset()
        self.solver.reset()
        if self.routes is not None:
            self.routes.new_goal()

    def follow_path(self, xy, frame: str, end: Pose2D, now: float) -> bool:
        """Nav2's FollowPath: the path (N, 2) in `frame` is the route until the goal ends, its
        end pose the goal. The same end again (a navigator replanning every second) only
        replaces the route: the progress checker, the recoveries and the warm start go on.
        Returns whether that was a new goal. Raises ValueError for a path that cannot be
        followed."""
        if self.routes is None:
            raise ValueError("following a path needs global_route true")
        goal = self.goal
        same = (goal is not None and self.detour is None and goal.frame == frame and
                math.hypot(goal.pose.x - end.x, goal.pose.y - end.y) <= 0.05 and
                abs(wrap_angle(goal.pose.yaw - end.yaw)) <= 0.05)
        if not same:
            self.set_goal(end, frame, now)
        self.routes.set_external(now, frame, xy, hold=True)
        return not same

    def cancel(self) -> None:
        self.goal = None
        self.detour = None
        self.recovery = None
        if self.routes is not None:
            self.routes.release_external()

    def set_detour(self, pose: Optional[Pose2D], frame: str = "map") -> None:
        """A fleet yield: drive to this passing place and wait there (None releases it)."""
        self.detour = None if pose is None else Target(pose, frame)
        self.progress.reset()
        if self.routes is not None:
            self.routes.new_goal()

    # ------------------------------------------------------------------ commands
    @property
    def command_time(self) -> float:
        """The time the last command was computed for (the limiter's step): what a stamped
        cmd_vel carries."""
        return self.limiter.last_t if self.limiter.last_t is not None else 0.0

    def stop_step(self, now: float) -> Tuple[float, float]:
        """One step of a controlled stop (the watchdog calls it between cycles)."""
        return self.limiter.stop_step(now)

    def hold(self, now: float, why: str) -> CycleOutput:
        """Inputs are stale or missing (`why`): stop now; abort the goal when that lasts
        stale_abort_time."""
        out = CycleOutput(self.limiter.stop_step(now), STALE, behavior="stop")
        if self.goal is None:
            return out
        if self.stale_since is None:
            self.stale_since = now
        self.progress.reset()
        if now - self.stale_since >= self.p["stale_abort_time"]:
            out.outcome = self._finish(STALE_INPUTS, "%s missing for %.1f s" % (
                why, now - self.stale_since))
            out.status = ABORTED
        else:
            out.outcome = self._check_timeout(now)
        return out

    def _finish(self, code: str, message: str) -> GoalOutcome:
        self.cancel()
        return GoalOutcome(code, message)

    def _check_timeout(self, now: float) -> Optional[GoalOutcome]:
        if self.goal is not None and now - self.goal_started > self.p["navigate_timeout"]:
            return self._finish(TIMEOUT, "not reached within %.0f s (%d recoveries)" % (
                self.p["navigate_timeout"], self.recoveries_used))
        return None

    def _stop(self, now: float, status: str, **kw) -> CycleOutput:
        return CycleOutput(self.limiter.stop_step(now), status, **kw)

    def _in_odom(self, target: Target, m2o: Optional[Pose2D]) -> Optional[Pose2D]:
        if target.frame == self.p["map_frame"]:
            return None if m2o is None else compose(inverse(m2o), target.pose)
        return target.pose

    # ------------------------------------------------------------------ the cycle
    def step(self, inp: CycleInput) -> CycleOutput:
        """One control cycle; the returned command has passed the limiter."""
        now = inp.now
        if self.goal is None:
            return self._stop(now, IDLE, behavior="stop")
        timeout = self._check_timeout(now)
        if timeout is not None:
            return self._stop(now, ABORTED, outcome=timeout)
        self.stale_since = None
        s = inp.state
        self._remember(s.x, s.y)
        target = self.detour if self.detour is not None else self.goal
        goal_odom = self._in_odom(target, inp.map_to_odom)
        if goal_odom is None:
            out = self.hold(now, "%s->%s" % (self.p["map_frame"], self.p["odom_frame"]))
            out.status = ABORTED if out.outcome is not None else NO_TRANSFORM
            return out
        distance = math.hypot(goal_odom.x - s.x, goal_odom.y - s.y)
        goal = Goal(goal_odom.x, goal_odom.y, goal_odom.yaw,
                    xy_tolerance=self.p["xy_goal_tolerance"],
                    yaw_tolerance=self.p["yaw_goal_tolerance"])
        common = dict(distance_remaining=distance, recoveries=self.recoveries_used)
        if target is self.detour:
            if distance <= self.p["yield_tolerance"]:
                self.progress.reset()          # waiting on purpose is no lack of progress
                return self._stop(now, WAITING, behavior="yield", **common)
        elif goal_reached(s, goal):
            return self._stop(now, GOAL_REACHED, behavior="stop",
                              outcome=self._finish(REACHED, ""), **common)

        route, route_event = self._route(inp, target)
        if inp.field is not None:
            # space nobody has seen, near the robot, is an obstacle to everything below
            # (the route above keeps the plain field)
            inp = replace(inp, field=unknown_as_obstacles(
                inp.field, (s.x, s.y), self.p.get("unknown_obstacle_range", 0.0)))
        out = CycleOutput((0.0, 0.0), OK, route=route, route_event=route_event, **common)
        if route_event.startswith("failed"):
            out.counters.append("route_failures")
            why = route_event[len("failed: "):]
            if why != self._route_failure:     # an event: log it once, not every replan
                out.log.append(("warn", "no global route: %s" % why))
            self._route_failure = why
        elif route_event.startswith("planned"):
            self._route_failure = ""
        ctg = None
        if inp.field is not None:
            ctg = self.optimizer.cost_to_go(inp.field, goal, route, (s.x, s.y))

        # a recovery in progress owns the cycle
        if self.recovery is not None:
            cmd = self.recovery.step(self._recovery_ctx(inp, route, ctg))
            if cmd is not None:
                out.cmd = self.limiter.limit(cmd[0], cmd[1], now)
                out.status, out.behavior = RECOVERING, self.recovery.name
                return out
            out.log.append(("info", "recovery %s done" % self.recovery.name))
            self._recovery_done(now)

        # progress: movement, and a route that exists
        moved = self.progress.check(now, s.x, s.y)
        no_way = (self.routes is not None and self.routes.failed_since is not None
                  and now - max(self.routes.failed_since, self.recovery_ended)
                  > self.p["progress_checker.movement_time_allowance"])
        if not moved or no_way:
            started = self._next_recovery(inp, route, ctg, out)
            if out.outcome is not None:
                out.cmd = self.limiter.stop_step(now)
                out.status, out.behavior = ABORTED, "stop"
                return out
            if started:
                cmd = self.recovery.step(self._recovery_ctx(inp, route, ctg))
                if cmd is not None:
                    out.cmd = self.limiter.limit(cmd[0], cmd[1], now)
                    out.status, out.behavior = RECOVERING, self.recovery.name
                    return out
                self._recovery_done(now)

        # turn on the spot towards the way, down the same cost-to-go the MPC scores on
        if self.rotate is not None and inp.field is not None:
            was_turning = self.rotate.active
            turn = self.rotate.command(s.x, s.y, s.yaw, s.v, route, inp.field,
                                       (goal.x, goal.y), self.p["xy_goal_tolerance"], ctg=ctg)
            if turn is None and self.rotate.blocked:
                out.counters.append("rotate_blocked")
            if turn is not None:
                if not was_turning:
                    out.counters.append("rotations")
                    out.log.append(("info", "the way leaves behind the robot: turning on the "
                                            "spot"))
                out.cmd = self.limiter.limit(turn[0], turn[1], now)
                out.behavior = "rotate_to_heading"
                return out
            if was_turning:
                out.log.append(("info", "facing the way: the MPC drives again"))

        result = self.solver.plan(s, goal, inp.field, route=route,
                                  predictions=inp.predictions,
                                  neighbours=list(inp.neighbours))
        out.result, out.behavior = result, self.p["solver"]
        if result.status == STATUS_COLLISION:
            self.collisions_seen += 1
        if result.status != "ok":
            out.counters.append("planner_" + result.status)
            out.cmd = self.limiter.stop_step(now)
            out.status = FAILED
            return out
        out.cmd = self.limiter.limit(float(result.controls[0, 0]),
                                     float(result.controls[0, 1]), now)
        if out.cmd != (float(result.controls[0, 0]), float(result.controls[0, 1])):
            out.counters.append("commands_limited")
        return out

    # ------------------------------------------------------------------ helpers
    def _remember(self, x: float, y: float) -> None:
        """The robot's own recent path (odom), a point every TRAIL_STEP, TRAIL_LENGTH long:
        the back_up recovery reverses along it."""
        if self.trail and math.hypot(x - self.trail[-1][0], y - self.trail[-1][1]) \
                < TRAIL_STEP:
            return
        self.trail.append((float(x), float(y)))
        if len(self.trail) > int(TRAIL_LENGTH / TRAIL_STEP):
            del self.trail[0]

    def _recovery_done(self, now: float) -> None:
        self.recovery = None
        self.recovery_ended = now
        self.progress.reset()
        self.optimizer.reset()

    def _route(self, inp: CycleInput, target: Target):
        if self.routes is None:
            return None, "no route manager"
        m2o = inp.map_to_odom
        if target.frame == self.p["map_frame"]:
            goal_map = (target.pose.x, target.pose.y)
        elif m2o is not None:
            g = compose(m2o, target.pose)
            goal_map = (g.x, g.y)
        elif not self.routes.has_map:
            # no localization and no map: the blank-map route in the odom frame itself
            m2o, goal_map = Pose2D(0.0, 0.0, 0.0), (target.pose.x, target.pose.y)
        else:
            goal_map = None
        pose = Pose2D(inp.state.x, inp.state.y, inp.state.yaw)
        self._robot_map = None if m2o is None else compose(m2o, pose)[:2]
        return self.routes.update(inp.now, pose, goal_map, inp.field, m2o)

    def _recovery_ctx(self, inp: CycleInput, route, ctg) -> RecoveryContext:
        s = inp.state
        err = None
        if self.rotate is not None:
            err = self.rotate.heading_error(s.x, s.y, s.yaw, route, ctg=ctg)
        return RecoveryContext(inp.now, s.x, s.y, s.yaw, s.v, inp.field, self.footprint,
                               heading_error=err, trail=tuple(self.trail))

    def _next_recovery(self, inp: CycleInput, route, ctg, out: CycleOutput) -> bool:
        """Start the next recovery that can run here (True), or end the goal when they are
        used up (out.outcome set)."""
        budget = len(self.recoveries) * int(self.p["recovery_rounds"])
        # reroute first at every progress failure, not only at its turn in the list: each
        # time it runs it closes one more squeeze (a gap the body did not get through),
        # so a box that leaves two narrow gaps costs two progress timeouts, not the goal;
        # it takes no time, and at most `budget` of them run per goal
        reroute = next((r for r in self.recoveries if r.name == "reroute"), None)
        if (reroute is not None and self.reroutes_used < budget
                and self.recoveries[self.recovery_index % len(self.recoveries)] is not reroute
                and reroute.start(self._recovery_ctx(inp, route, ctg)) is None):
            self.reroutes_used += 1
            return self._started(reroute, out, "again")
        while self.recovery_index < budget:
            rec = self.recoveries[self.recovery_index % len(self.recoveries)]
            self.recovery_index += 1
            why = rec.start(self._recovery_ctx(inp, route, ctg))
            if why is not None:
                out.log.append(("info", "recovery %s skipped: %s" % (rec.name, why)))
                continue
            if rec is reroute:
                self.reroutes_used += 1
            return self._started(rec, out, "%d of %d" % (self.recovery_index, budget))
        out.outcome = self._abort_outcome(inp)
        out.log.append(("error", "goal aborted (%s): %s" % (out.outcome.code,
                                                           out.outcome.message)))
        out.counters.append("aborted_" + out.outcome.code)
        return False

    def _started(self, rec: Recovery, out: CycleOutput, which: str) -> bool:
        self.recovery = rec
        self.recoveries_used += 1
        self.last_recovery = rec.name
        self.collisions_seen = 0
        out.recoveries = self.recoveries_used
        out.counters.append("recoveries")
        out.counters.append("recovery_" + rec.name)
        out.log.append(("warn", "no progress for %.0f s: recovery %s (%s)" % (
            self.p["progress_checker.movement_time_allowance"], rec.name, which)))
        return True

    def _abort_outcome(self, inp: CycleInput) -> GoalOutcome:
        used = "after %d recoveries" % self.recoveries_used
        routes = self.routes
        if routes is not None and routes.failed_since is not None:
            return self._finish(NO_WAY, "no way to the goal: %s (%s)" % (
                routes.last_failure, used))
        s = inp.state
        near = [n for n in inp.neighbours
                if np.min(np.hypot(n.xy[:, 0] - s.x, n.xy[:, 1] - s.y)) < BLOCKING_NEIGHBOUR]
        if near:
            return self._finish(BLOCKED, "blocked by %s (%s)" % (
                ", ".join(sorted(n.robot_id for n in near)), used))
        if self.collisions_seen > 0:
            return self._finish(BLOCKED, "every way the MPC sampled collides (%s)" % used)
        return self._finish(NO_PROGRESS, "moved less than %.2f m in %.0f s (%s)" % (
            self.p["progress_checker.required_movement_radius"],
            self.p["progress_checker.movement_time_allowance"], used))
