"""The planner's last gate before cmd_vel: limits, rate limits, controlled stops, speed cap."""
from __future__ import annotations

import math

import pytest

from wm_planner.command_limiter import CommandLimiter, speed_cap
from wm_world_model.state import RobotLimits

LIM = RobotLimits(v_max=0.8, v_min=-0.2, w_max=1.2, a_max=1.0, alpha_max=2.5)


def test_velocity_and_rate_limits():
    lim = CommandLimiter(LIM, period=0.1)
    assert lim.limit(5.0, 9.0, 0.0) == pytest.approx((0.1, 0.25))   # from rest, one period
    v, w = lim.limit(5.0, -9.0, 0.1)
    assert v == pytest.approx(0.2) and w == pytest.approx(0.0)
    for k in range(2, 20):
        v, w = lim.limit(5.0, -9.0, 0.1 * k)
    assert (v, w) == pytest.approx((0.8, -1.2))                       # the velocity box
    # a long silence does not bank acceleration: at most max_gap (2 periods) worth
    assert lim.limit(-5.0, 0.0, 100.0)[0] == pytest.approx(0.8 - 0.2)


def test_non_finite_requests_become_a_braking_step():
    lim = CommandLimiter(LIM, period=0.1)
    lim.reset(0.5, 0.0)
    v, w = lim.limit(math.nan, 0.0, 0.0)
    assert v == pytest.approx(0.4) and w == 0.0 and lim.rejected == 1
    v, _ = lim.limit(0.3, math.inf, 0.1)
    assert v == pytest.approx(0.3) and lim.rejected == 2


def test_controlled_stop_ramps_then_holds_zero():
    lim = CommandLimiter(LIM, period=0.05)
    lim.reset(0.7, -1.0)
    seq = [lim.stop_step(0.05 * k) for k in range(30)]
    vs = [v for v, _ in seq]
    assert all(b <= a for a, b in zip(vs, vs[1:]))
    assert all(abs(b - a) <= 1.0 * 0.05 + 1e-12 for a, b in zip([0.7] + vs, vs))
    assert sum(1 for v in vs if v > 0) == 13                         # 0.7 / 0.05 steps
    assert seq[-1] == (0.0, 0.0) and lim.stopped
    assert seq[15][1] == 0.0                                         # w reached zero earlier


def test_speed_cap_from_horizon_and_sensor_range():
    # v <= 2 a T and v^2 / 2a <= range - margin
    assert speed_cap(LIM, horizon_s=1.0, sensor_range=8.0) == pytest.approx(2.0)
    assert speed_cap(LIM, 1.0, 0.5, margin=0.3) == pytest.approx(math.sqrt(2 * 1.0 * 0.2))
    assert speed_cap(LIM, 0.2, 100.0) == pytest.approx(0.4)


def test_configured_top_speed_is_capped():
    from wm_planner.configure import build_limits
    from wm_planner.params import PLANNER_PARAMS

    p = {s.name: s.default for s in PLANNER_PARAMS}
    p.update(v_max=1.5, a_max=1.0, horizon=10, dt=0.1, sensor_range=1.0, robot_radius=0.3)
    assert build_limits(p).v_max == pytest.approx(math.sqrt(2 * 1.0 * 0.7))
    p.update(sensor_range=50.0)
    assert build_limits(p).v_max == pytest.approx(1.5)
