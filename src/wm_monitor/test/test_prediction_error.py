"""Online prediction error against a known kinematic world: commands drive a unicycle whose
wheels slip (the robot covers only a fraction of the commanded distance and turn), so the
one-step error of the kinematic prediction is known exactly; pairing of commands, localization
and odometry at different rates and offsets, and every way a step is skipped or an input
rejected. Plus the real world-model artifact through the planner's LearnedMotionModel."""
from __future__ import annotations

import math
from pathlib import Path

import pytest

from wm_monitor.prediction_error import (KinematicPredictor, PairingConfig,
                                         PredictionErrorTracker, RollingMean, kinematic_step,
                                         load_world_model, wrap)

DT = 0.1
T0 = 1000.0
ARTIFACT = Path(__file__).resolve().parents[2] / "wm_world_model" / "models" / \
    "worldmodel-1.0.0"


class SlipWorld:
    """A unicycle at the command's speed times slip (exact per-step integration with the
    heading at the step's start, as the kinematic prediction does). Wheel odometry reports
    the commanded (wheel) speeds: it cannot see the slip."""

    def __init__(self, slip_v=0.8, slip_w=0.9, pose=(2.0, 3.0, 0.3)):
        self.slip_v, self.slip_w = slip_v, slip_w
        self.pose = pose

    def step(self, u):
        x, y, yaw = self.pose
        d = self.slip_v * u[0] * DT
        self.pose = (x + d * math.cos(yaw), y + d * math.sin(yaw), yaw + self.slip_w * u[1] * DT)
        return self.pose


def commands(n, v=0.5, w=0.4):
    return [(v, w * math.sin(0.2 * k)) for k in range(n)]


def drive(tracker, world, cmds, loc_offset=0.0, skip_cmd=(), skip_loc=(), now_lag=0.15):
    """Feed commands, localization (at the step times + loc_offset, linear motion in
    between is assumed: use loc_offset only with w = 0) and odometry at 50 Hz; returns the
    results of process() called as data arrives."""
    out = []
    poses = [world.pose]
    for u in cmds:
        poses.append(world.step(u))
    for k, u in enumerate(cmds):
        t = T0 + k * DT
        now = t + now_lag
        if k not in skip_cmd:
            assert tracker.add_command(t, u[0], u[1], now) == ""
        for j in range(5):   # odometry at 50 Hz: the wheel speeds (the command)
            tracker.add_odometry(t + j * 0.02, u[0], u[1], now)
        if k not in skip_loc:
            a = loc_offset / DT
            p0, p1 = poses[k], poses[k + 1]
            pose = (p0[0] + a * (p1[0] - p0[0]), p0[1] + a * (p1[1] - p0[1]),
                    p0[2] + a * (p1[2] - p0[2]))
            tracker.add_localization(t + loc_offset, *pose, now)
        out += tracker.process(now)
    return out, poses


def test_kinematic_error_equals_the_slip():
    cfg = PairingConfig(dt=DT)
    tr = PredictionErrorTracker(cfg, KinematicPredictor(DT))
    cmds = commands(40)
    res, poses = drive(tr, SlipWorld(0.8, 0.9), cmds)
    res += tr.process(T0 + 100.0)
    assert len(res) >= 37 and tr.steps == len(res)
    for r in res:
        k = int(round((r.t0 - T0) / DT))
        v, w = cmds[k]
        assert r.t1 == pytest.approx(r.t0 + DT)
        assert r.position_error == pytest.approx(0.2 * abs(v) * DT, abs=1e-9)
        assert r.heading_error == pytest.approx(0.1 * abs(w) * DT, abs=1e-9)
        assert r.kinematic_position_error == pytest.approx(r.position_error, abs=1e-12)
        # the state is the localization pose and the odometry twist at t0, not a guess
        assert r.state0[:2] == pytest.approx(poses[k][:2], abs=1e-9)
        assert r.state0[3:] == pytest.approx(cmds[k], abs=1e-9)
        assert r.action0 == pytest.approx(cmds[k]) and r.action1 == pytest.approx(cmds[k + 1])
        assert r.inference_s >= 0.0
    assert tr.error_mean.mean == pytest.approx(0.2 * 0.5 * DT, abs=1e-9)
    assert not tr.rejected and not tr.skipped


def test_no_slip_no_error_and_interpolated_localization_and_odometry():
    tr = PredictionErrorTracker(PairingConfig(dt=DT), KinematicPredictor(DT))
    # straight line: localization 40 ms after each command, interpolated to the command time
    cmds = [(0.3 + 0.01 * k, 0.0) for k in range(30)]
    res, _ = drive(tr, SlipWorld(1.0, 1.0, pose=(0.0, 0.0, 1.0)), cmds, loc_offset=0.04)
    assert len(res) >= 25
    assert max(r.position_error for r in res) < 1e-9
    res_slip, _ = drive(PredictionErrorTracker(PairingConfig(dt=DT), KinematicPredictor(DT)),
                        SlipWorld(0.5, 1.0, pose=(0.0, 0.0, 1.0)), cmds, loc_offset=0.04)
    for r in res_slip:
        assert r.position_error == pytest.approx(0.5 * r.action0[0] * DT, abs=1e-9)


def test_steps_wait_for_the_localization_after_them():
    tr = PredictionErrorTracker(PairingConfig(dt=DT, max_delay=0.5), KinematicPredictor(DT))
    for k in range(3):
        tr.add_command(T0 + k * DT, 0.5, 0.0, T0 + k * DT)
        tr.add_odometry(T0 + k * DT, 0.5, 0.0, T0 + k * DT)
    tr.add_localization(T0, 0.0, 0.0, 0.0, T0 + 0.2)
    assert tr.process(T0 + 0.2) == []                 # the pose at T0 + 0.1 has not come yet
    tr.add_localization(T0 + 0.1, 0.04, 0.0, 0.0, T0 + 0.25)
    [r] = tr.process(T0 + 0.25)
    assert r.position_error == pytest.approx(0.01)
    assert tr.pending == 2


def test_gaps_and_changes_skip_steps_and_say_why():
    cfg = PairingConfig(dt=DT)
    tr = PredictionErrorTracker(cfg, KinematicPredictor(DT))
    cmds = [(0.5, 0.0)] * 40
    # a missing command (10), localization missing for 3 steps (20-22: a 0.4 s gap)
    res, _ = drive(tr, SlipWorld(1.0, 1.0), cmds, skip_cmd={10}, skip_loc={20, 21, 22})
    res += tr.process(T0 + 100.0)
    assert tr.skipped["command_gap"] == 1
    # steps into and out of the localization gap: 19->20, 20->21, 21->22, 22->23
    assert tr.skipped["localization_gap"] == 4
    assert len(res) == 39 - 1 - 1 - 4   # 39 pairs, one merged by the missing command
    assert not tr.rejected


def test_command_changed_within_a_step_payload_change_and_repeats():
    tr = PredictionErrorTracker(PairingConfig(dt=DT), KinematicPredictor(DT))
    world = SlipWorld(1.0, 1.0)
    t = T0
    for k in range(12):
        t = T0 + k * DT
        u = (0.5, 0.0)
        world.step(u)
        tr.add_command(t, *u, now=t)
        tr.add_command(t + 0.05, *u, now=t + 0.05)     # a repeat (the gate's zero timer...)
        if k == 3:
            tr.add_command(t + 0.06, 0.2, 0.0, now=t + 0.06)   # a new command mid-step
        if k == 6:
            tr.set_payload(50.0)
        tr.add_odometry(t, *u, now=t)
    assert tr.skipped["command_changed"] == 0          # decided at process()
    tr.process(t + 10.0)
    # the step of k = 3 and the one the new command started (k = 4 came within it)
    assert tr.skipped["command_changed"] == 2
    assert tr.skipped["payload_changed"] == 1


def test_bad_input_is_rejected_and_counted():
    tr = PredictionErrorTracker(PairingConfig(dt=DT, max_delay=0.5), KinematicPredictor(DT))
    now = T0
    assert tr.add_localization(T0, float("nan"), 0.0, 0.0, now) == "localization_invalid"
    assert tr.add_localization(T0, 1e9, 0.0, 0.0, now) == "localization_invalid"
    assert tr.add_localization(T0, 1.0, 0.0, 0.0, now) == ""
    assert tr.add_localization(T0 - 0.1, 1.0, 0.0, 0.0, now) == "localization_out_of_order"
    assert tr.add_localization(T0, 1.0, 0.0, 0.0, now) == "localization_out_of_order"
    assert tr.add_localization(T0 + 5.0, 1.0, 0.0, 0.0, now) == "localization_future"
    assert tr.add_odometry(T0 - 2.0, 0.1, 0.0, now) == "odom_stale"
    assert tr.add_odometry(T0, 50.0, 0.0, now) == "odom_invalid"
    assert tr.add_command(T0, float("inf"), 0.0, now) == "cmd_vel_invalid"
    assert tr.add_command(T0, 0.1, 0.0, now) == ""
    assert tr.add_command(T0 - 0.05, 0.1, 0.0, now) == "cmd_vel_out_of_order"
    assert tr.add_command(T0, 0.2, 0.0, now) == ""      # same stamp: it replaces the first
    assert tr.set_payload(float("nan")) == "payload_invalid"
    assert tr.set_payload(-1.0) == "" and tr.payload is None
    assert sum(tr.rejected.values()) == 10
    tr.add_command(T0 + DT, 0.2, 0.0, now + DT)
    tr.add_localization(T0 + DT, 1.02, 0.0, 0.0, now + DT)
    tr.add_odometry(T0, 0.2, 0.0, now + DT)
    tr.add_odometry(T0 + DT, 0.2, 0.0, now + DT)
    [r] = tr.process(now + DT)
    assert r.action0 == (0.2, 0.0) and r.position_error == pytest.approx(0.0, abs=1e-9)


def test_localization_that_never_comes_skips_after_max_delay():
    tr = PredictionErrorTracker(PairingConfig(dt=DT, max_delay=0.3), KinematicPredictor(DT))
    for k in range(5):
        tr.add_command(T0 + k * DT, 0.5, 0.0, T0 + k * DT)
        tr.add_odometry(T0 + k * DT, 0.5, 0.0, T0 + k * DT)
    assert tr.process(T0 + 0.4) == [] and not tr.skipped    # may still come
    assert tr.process(T0 + 1.0) == []
    assert tr.skipped["localization_missing"] == 4 and tr.pending == 1


def test_rolling_mean_window_and_wrap():
    m = RollingMean(10.0)
    assert math.isnan(m.mean)
    for k in range(30):
        m.add(float(k), 1.0 if k < 20 else 3.0)
    assert m.mean == pytest.approx((1.0 + 10 * 3.0) / 11)   # t in [19, 29]
    assert wrap(3 * math.pi) == pytest.approx(-math.pi)
    assert kinematic_step((0, 0, math.pi / 2, 0, 0), (1.0, 1.0), 0.1) == pytest.approx(
        (0.0, 0.1, math.pi / 2 + 0.1))


def test_config_is_validated():
    with pytest.raises(ValueError):
        PairingConfig(dt=0.1, time_tolerance=0.06).validate()
    with pytest.raises(ValueError):
        PredictionErrorTracker(PairingConfig(window=0.0), KinematicPredictor(0.1))


@pytest.mark.skipif(not ARTIFACT.is_dir(), reason="shipped world model not in the tree")
def test_world_model_artifact_one_step_prediction():
    """The planner's LearnedMotionModel, batch 1, one step: close to the kinematics at a
    steady speed, a clear error against a slipping robot, payload passed through."""
    wm = load_world_model(str(ARTIFACT), DT)
    assert wm.version == "worldmodel-1.0.0"
    tr = PredictionErrorTracker(PairingConfig(dt=DT), wm)
    cmds = [(0.5, 0.0)] * 20
    tr.set_payload(20.0)
    res, _ = drive(tr, SlipWorld(1.0, 1.0), cmds)
    assert len(res) >= 17
    assert wm.model.payload_kg == 20.0
    errs = [r.position_error for r in res]
    assert all(math.isfinite(e) for e in errs)
    assert max(errs) < 0.02, errs                      # no slip: the model agrees (cm)
    assert all(r.inference_s > 0.0 for r in res)
    res, _ = drive(PredictionErrorTracker(PairingConfig(dt=DT), wm), SlipWorld(0.4, 1.0),
                   cmds)
    assert min(r.position_error for r in res) > 0.02   # 60 % slip: 3 cm per step
    assert wm.fallbacks == 0
