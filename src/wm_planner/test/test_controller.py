"""The control cycle (wm_planner.controller.Controller) on synthetic worlds, with an ideal
unicycle for the robot: goals reached, recoveries in their order, aborts with their reasons,
stale inputs, timeouts, and live parameter changes reaching every solver. Plain Python."""
from __future__ import annotations

import math

import numpy as np
import pytest

from planner_world import BoxWorld
from wm_common.footprint import Footprint
from wm_common.geometry import Pose2D
from wm_planner import controller as ctl
from wm_planner.configure import planner_params
from wm_planner.controller import Controller, CycleInput
from wm_planner.models import Goal
from wm_planner.progress_checker import ProgressChecker
from wm_planner.recoveries import BackUp, RecoveryContext, Spin
from wm_world_model import motion_model
from wm_world_model.casadi_form import CasadiKinematics, CasadiWorldModel
from wm_world_model.motion_model import KinematicMotionModel
from wm_world_model.state import RobotState

IDENTITY = Pose2D(0.0, 0.0, 0.0)
DT = 0.1


def params(**overrides):
    p = planner_params(dict({"seed": 3, "time_budget_ms": 1000.0, "num_samples": 256},
                            **overrides))
    return p


class Drive:
    """An ideal unicycle driven by the controller at 10 Hz in a BoxWorld (odom = map)."""

    def __init__(self, world: BoxWorld, controller: Controller, x, y, yaw):
        self.world, self.c = world, controller
        self.x, self.y, self.yaw, self.v, self.w = x, y, yaw, 0.0, 0.0
        self.t = 0.0
        self.outs = []

    def step(self, field=True):
        f = self.world.window(self.x, self.y) if field else None
        out = self.c.step(CycleInput(self.t, RobotState(self.x, self.y, self.yaw, self.v,
                                                        self.w), f, IDENTITY))
        self.outs.append(out)
        self.v, self.w = out.cmd
        self.yaw += self.w * DT
        self.x += self.v * DT * math.cos(self.yaw)
        self.y += self.v * DT * math.sin(self.yaw)
        self.t = round(self.t + DT, 6)
        return out

    def until_outcome(self, seconds: float):
        while self.t < seconds:
            out = self.step()
            if out.outcome is not None:
                return out
        return None


def test_progress_checker_is_nav2s_simple_progress_checker():
    pc = ProgressChecker(0.5, 10.0)
    assert pc.check(0.0, 0.0, 0.0)
    assert pc.check(9.9, 0.4, 0.0)         # not 0.5 m yet, within the allowance
    assert not pc.check(10.1, 0.4, 0.0)    # 10 s without leaving the 0.5 m circle
    assert pc.check(10.2, 0.6, 0.0)        # moved: a new baseline
    assert pc.check(20.1, 0.6, 0.0) and not pc.check(20.3, 0.6, 0.0)
    pc.reset()
    assert pc.check(30.0, 0.6, 0.0) and pc.time_left(35.0) == pytest.approx(5.0)


def test_reaches_a_goal_round_a_wall_and_goes_idle():
    world = BoxWorld([(1.0, 1.2, -1.5, 1.5)])        # a wall across the straight line
    c = Controller(params(world_model_artifact=""))
    c.set_goal(Pose2D(3.0, 0.0, 0.0), "map", 0.0)
    d = Drive(world, c, 0.0, 0.0, 0.0)
    out = d.until_outcome(40.0)
    assert out is not None and out.outcome.code == ctl.REACHED, d.outs[-1]
    assert out.status == ctl.GOAL_REACHED and c.goal is None
    assert math.hypot(d.x - 3.0, d.y) <= c.p["xy_goal_tolerance"] + 1e-9
    assert min(world.true_clearance(o.result.trajectory[0, 0], o.result.trajectory[0, 1])
               for o in d.outs if o.result is not None) > 0.275   # never touched the wall
    assert any(o.route is not None for o in d.outs)      # a route without a map
    # then a controlled stop at a_max, and zero
    v0 = out.cmd[0]
    steps = int(math.ceil(v0 / (c.p["a_max"] * DT))) + 1
    idle = [d.step() for _ in range(steps)]
    assert all(o.status == ctl.IDLE and o.outcome is None for o in idle)
    assert all(b.cmd[0] <= a.cmd[0] for a, b in zip(idle, idle[1:]))
    assert idle[-1].cmd == (0.0, 0.0)


def test_boxed_in_robot_tries_its_recoveries_in_order_then_says_no_way():
    """Walls all round, 0.05 m before and behind the 0.7 x 0.55 m body and 0.125 m beside
    it (the field's surfaces at x = +-0.4, y = +-0.4): no route to a goal outside, no room
    to back up or turn. Every recovery that cannot
    run here is skipped with its reason; the goal aborts NO_WAY with the route's reason,
    within the progress checker's allowance times the number of recoveries that ran plus
    one, plus what they took."""
    world = BoxWorld([(-1.0, 1.0, 0.41, 0.7), (-1.0, 1.0, -0.7, -0.41),
                      (0.42, 0.8, -0.7, 0.7), (-0.8, -0.42, -0.7, 0.7)])
    c = Controller(params(world_model_artifact=""))
    c.set_goal(Pose2D(4.0, 0.0, 0.0), "map", 0.0)
    d = Drive(world, c, 0.0, 0.0, 0.0)
    out = d.until_outcome(120.0)
    assert out is not None and out.outcome.code == ctl.NO_WAY, [o.log for o in d.outs if o.log]
    assert "no way to the goal" in out.outcome.message and out.status == ctl.ABORTED
    logs = [m for o in d.outs for _, m in o.log]
    ran = [m.split("recovery ")[1].split(" ")[0] for m in logs if "no progress" in m]
    skipped = [m for m in logs if "skipped" in m]
    # reroute (no route to reroute), back_up (a wall 0.25 m behind) and spin (the corners'
    # circle is not clear) cannot run in the box; clear_and_replan and wait can
    assert ran == ["clear_and_replan", "wait"], logs
    assert any("back_up skipped" in m for m in skipped)
    assert any("spin skipped" in m for m in skipped)
    allowance = c.p["progress_checker.movement_time_allowance"]
    assert d.t <= allowance * (len(ran) + 1) + c.p["wait_time"] + 1.0
    assert out.recoveries == 2


def test_stuck_without_a_route_aborts_with_a_reason_never_at_the_timeout():
    """global_route off and the goal inside a closed box: the MPC drives up to the box and
    can get no closer. The progress checker fires, the recoveries run, and the goal ends
    with no_progress or blocked, long before navigate_timeout."""
    world = BoxWorld([(2.5, 4.5, 1.0, 1.2), (2.5, 4.5, -1.2, -1.0),
                      (2.5, 2.7, -1.2, 1.2), (4.3, 4.5, -1.2, 1.2)])
    c = Controller(params(world_model_artifact="", global_route=False, navigate_timeout=300.0))
    c.set_goal(Pose2D(3.5, 0.0, 0.0), "map", 0.0)
    d = Drive(world, c, 0.0, 0.0, 0.0)
    out = d.until_outcome(200.0)
    assert out is not None and out.outcome.code in (ctl.NO_PROGRESS, ctl.BLOCKED), out
    assert out.recoveries >= 1 and d.t < 150.0
    assert "recoveries" in out.outcome.message


def test_stale_inputs_stop_at_once_and_abort_after_stale_abort_time():
    c = Controller(params(world_model_artifact="", stale_abort_time=2.0))
    c.set_goal(Pose2D(3.0, 0.0, 0.0), "map", 0.0)
    c.limiter.reset(0.5, 0.0)      # moving at 0.5 m/s when the inputs stop
    first = c.hold(0.0, "odometry")
    assert first.status == ctl.STALE and first.cmd[0] < 0.5 and first.outcome is None
    out = None
    t = 0.0
    while out is None or out.outcome is None:
        t += 0.05
        out = c.hold(t, "odometry")
        assert t < 2.2
    assert out.outcome.code == ctl.STALE_INPUTS and "odometry missing" in out.outcome.message
    assert out.cmd == (0.0, 0.0) and c.goal is None


def test_navigate_timeout_ends_the_goal():
    world = BoxWorld([])
    c = Controller(params(world_model_artifact="", navigate_timeout=1.0))
    c.set_goal(Pose2D(30.0, 0.0, 0.0), "map", 0.0)
    d = Drive(world, c, 0.0, 0.0, 0.0)
    out = d.until_outcome(5.0)
    assert out.outcome.code == ctl.TIMEOUT and 1.0 < d.t <= 1.3


def test_a_live_change_reaches_every_solver():
    c = Controller(params(world_model_artifact="", solver="hybrid"))
    assert c.nmpc is not None
    c.reconfigure({"v_max": 0.3, "goal.weight": 7.0, "rotate_speed": 0.4,
                   "progress_checker.movement_time_allowance": 4.0,
                   "recovery_behaviors": ["wait"]})
    assert c.optimizer.limits.v_max == pytest.approx(0.3)
    assert c.nmpc.limits.v_max == pytest.approx(0.3)
    assert c.limiter.limits.v_max == pytest.approx(0.3)
    goal = [k for k in c.nmpc.critics if k.name == "goal"][0]
    assert goal.weight == 7.0
    assert [k for k in c.optimizer.critics if k.name == "goal"][0].weight == 7.0
    assert c.rotate.angular_speed == pytest.approx(0.4)
    assert c.progress.allowance == 4.0 and [r.name for r in c.recoveries] == ["wait"]
    # a change that does not build changes nothing
    before = (c.optimizer, c.nmpc, c.p["v_max"])
    with pytest.raises(ValueError):
        c.reconfigure({"v_max": 0.5, "footprint": [0.3, 0.2, 0.3, -0.2]})
    assert (c.optimizer, c.nmpc, c.p["v_max"]) == before


def test_the_nmpc_plans_with_the_mppis_own_model_also_after_a_swap(monkeypatch):
    """Hybrid: the artifact is loaded and verified once (for the MPPI); the NMPC's CasADi
    form is derived from that same WorldModel, and a swap reaches both solvers."""
    loads = []
    real = motion_model.load_verified
    monkeypatch.setattr(motion_model, "load_verified",
                        lambda *a, **k: loads.append(a[0]) or real(*a, **k))
    c = Controller(params(world_model_artifact="worldmodel-1.0.0", solver="hybrid"))
    assert len(loads) == 1
    assert isinstance(c.nmpc.model, CasadiWorldModel)
    assert c.nmpc.model.version == c.motion_model.version == "1.0.0"
    w = c.motion_model.world_model.residual[0].weight.detach().double().numpy()
    assert np.array_equal(np.asarray(c.nmpc.model.layers[0][1]), w)
    c.use_motion_model(KinematicMotionModel())
    assert isinstance(c.nmpc.model, CasadiKinematics) and len(loads) == 1


def test_back_up_and_spin_move_only_where_the_footprint_has_room():
    fp = Footprint.rectangle(0.7, 0.55)
    wall_behind = BoxWorld([(-0.65, -0.42, -2.0, 2.0)]).window(0.0, 0.0)   # 0.05 m behind
    ctx = RecoveryContext(0.0, 0.0, 0.0, 0.0, 0.0, wall_behind, fp, heading_error=-1.0)
    assert BackUp(0.3, 0.1).start(ctx) == "no room behind the robot"
    assert Spin(1.57, 0.6).start(ctx) == "no room to turn either way"
    open_field = BoxWorld([]).window(0.0, 0.0)
    ctx = RecoveryContext(0.0, 0.0, 0.0, 0.0, 0.0, open_field, fp, heading_error=-1.0)
    spin = Spin(1.57, 0.6)
    assert spin.start(ctx) is None
    assert spin.step(ctx) == (0.0, -0.6)      # towards the way (negative heading error)
    back = BackUp(0.3, 0.1)
    assert back.start(ctx) is None and back.step(ctx) == (-0.1, 0.0)
    moved = RecoveryContext(3.5, -0.31, 0.0, 0.0, -0.1, open_field, fp)
    assert back.step(moved) is None            # 0.3 m done


def test_route_and_turn_agree_on_the_way_round_a_box():
    """One notion of the way: a box straight ahead, a little off-centre; the route goes
    round one side and the point the turn on the spot aims at (down the MPC's own
    cost-to-go) is on that same side, however the robot is turned."""
    world = BoxWorld([(1.5, 2.1, -0.9, 0.6)])         # more of it south of the line
    c = Controller(params(world_model_artifact=""))
    c.set_goal(Pose2D(4.0, 0.0, 0.0), "map", 0.0)
    for yaw in (0.0, 2.0, -2.0, math.pi):
        inp = CycleInput(0.0, RobotState(0.0, 0.0, yaw, 0.0, 0.0), world.window(0.0, 0.0),
                         IDENTITY)
        out = c.step(inp)
        route = out.route
        side = np.sign(route[np.argmin(np.abs(route[:, 0] - 1.8)), 1])
        assert side > 0     # north, round the short side
        ctg = c.optimizer.cost_to_go(inp.field, Goal(4.0, 0.0, 0.0), route, (0.0, 0.0))
        p = c.rotate.way_point(0.0, 0.0, route, ctg)
        assert p is not None and p[1] >= -1e-9, (yaw, p)


def test_back_up_reverses_along_the_robots_own_path():
    """A robot that drove into a pocket along a curve backs out along that curve: the rear
    is steered towards the trail behind it (reverse pure pursuit), not straight back."""
    fp = Footprint.rectangle(0.7, 0.55)
    field = BoxWorld([]).window(0.0, 0.0)
    trail = [(-0.8, 0.45), (-0.6, 0.3), (-0.4, 0.15), (-0.2, 0.05), (0.0, 0.0)]
    ctx = RecoveryContext(0.0, 0.0, 0.0, 0.0, 0.0, field, fp, trail=trail)
    back = BackUp(0.6, 0.1)
    assert back.start(ctx) is None
    v, w = back.step(ctx)
    # the trail lies behind and to the left (+y): the rear turns towards +y, i.e. clockwise
    assert v == pytest.approx(-0.1) and w < 0.0
    # no trail: straight back
    plain = BackUp(0.6, 0.1)
    assert plain.start(RecoveryContext(0.0, 0.0, 0.0, 0.0, 0.0, field, fp)) is None
    assert plain.step(RecoveryContext(0.1, 0.0, 0.0, 0.0, 0.0, field, fp)) == (-0.1, 0.0)


def test_follow_path_drives_the_given_path_and_a_replan_to_the_same_end_goes_on():
    """Nav2's FollowPath: the path is the route (held, no timeout) and its end the goal; a
    navigator re-sending a path to the same end every second does not restart the goal (the
    progress checker keeps its baseline); the goal's end releases the path."""
    world = BoxWorld([(1.0, 1.2, -1.5, 1.5)])        # a wall across the straight line
    c = Controller(params(world_model_artifact=""))
    path = np.array([[0.0, 0.0], [0.4, 2.3], [1.8, 2.3], [3.0, 0.0]])   # over the wall's end
    assert c.follow_path(path, "map", Pose2D(3.0, 0.0, 0.0), 0.0)        # a new goal
    d = Drive(world, c, 0.0, 0.0, 0.0)
    for _ in range(25):
        d.step()
    baseline = c.progress._baseline
    assert baseline is not None
    # the same end again, a slightly different path (a replan): not a new goal
    assert not c.follow_path(path + [0.0, 0.05], "map", Pose2D(3.0, 0.0, 0.0), d.t)
    assert c.progress._baseline == baseline
    assert c.routes.external_held
    out = d.until_outcome(40.0)
    assert out is not None and out.outcome.code == ctl.REACHED, d.outs[-1]
    assert {o.route_event for o in d.outs if o.route is not None} == {"external"}
    # it went the path's way: over the wall's upper end (y > 1.5)
    assert max(o.result.trajectory[0, 1] for o in d.outs if o.result is not None) > 1.5
    assert c.routes.external is None and not c.routes.external_held   # released at the end
    with pytest.raises(ValueError):
        Controller(params(world_model_artifact="", global_route=False)).follow_path(
            path, "map", Pose2D(3.0, 0.0, 0.0), 0.0)


def test_what_a_cycle_output_says_to_the_node():
    """Moving (else the watchdog goes on with a controlled stop) and the health it reports."""
    assert ctl.CycleOutput((0.3, 0.0), ctl.OK, behavior="mppi").moving
    assert ctl.CycleOutput((0.0, 0.4), ctl.RECOVERING, behavior="spin").moving
    assert not ctl.CycleOutput((0.0, 0.0), ctl.OK).moving
    assert not ctl.CycleOutput((0.2, 0.0), ctl.FAILED).moving    # a stop step
    assert ctl.CycleOutput((0.3, 0.0), ctl.OK, behavior="mppi").health() == \
        ("ok", "tracking goal")
    assert ctl.CycleOutput((0.0, 0.5), ctl.OK, behavior="rotate_to_heading").health() == \
        ("ok", "turning on the spot towards the way")
    assert ctl.CycleOutput((0.0, 0.5), ctl.RECOVERING, behavior="spin").health() == \
        ("warn", "recovery: spin")
    for status in (ctl.IDLE, ctl.FAILED, ctl.WAITING, ctl.ABORTED, ctl.STALE,
                   ctl.GOAL_REACHED, ctl.NO_TRANSFORM):
        assert ctl.CycleOutput((0.0, 0.0), status).health() is None
