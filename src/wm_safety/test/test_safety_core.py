"""The safety layer's plain modules: zones, the monitor's verdict, smoother, mux, speed zones
and the gate that composes them (no ROS)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from wm_common.map_io import MapError
from wm_safety import decision as cm
from wm_safety.gate import GateConfig, SafetyGate
from wm_safety.mux import NAV, TELEOP, CommandMux
from wm_safety.smoother import AxisLimits, VelocitySmoother
from wm_safety.speed_zones import SpeedZones, external_limit, write_mask
from wm_common.geometry import polygon_from_flat
from wm_safety.zones import (Margins, Zones, grow, overhangs_from_flat, points_in_polygon,
                             stoppable_speed, time_to_collision)

CHASSIS = polygon_from_flat([0.35, 0.275, 0.35, -0.275, -0.35, -0.275, -0.35, 0.275])
STOP, SLOW = Margins(0.10, 0.10, 0.03), Margins(0.40, 0.25, 0.06)
HANG = overhangs_from_flat([1.0, 0.05, 0.05, 0.0, 200.0, 0.2, 0.2, 0.1])


def zones(payload=0.0):
    return Zones.build(CHASSIS, HANG, payload, STOP, SLOW, max_travel=1.2)


def smoother(jerk=5.0):
    return VelocitySmoother(AxisLimits(-0.3, 0.8, 1.0, 1.0, jerk),
                            AxisLimits(-1.5, 1.5, 2.5, 2.5, 4 * jerk))


# ------------------------------------------------------------------ zones
def test_point_in_polygon_matches_the_rectangle_test():
    rng = np.random.default_rng(0)
    pts = rng.uniform(-1, 1, size=(5000, 2))
    inside = points_in_polygon(pts, CHASSIS)
    expect = (np.abs(pts[:, 0]) < 0.35) & (np.abs(pts[:, 1]) < 0.275)
    assert (inside == expect).all()
    # a concave (L-shaped) polygon
    ell = polygon_from_flat([0, 0, 2, 0, 2, 1, 1, 1, 1, 2, 0, 2])
    got = points_in_polygon(np.array([[0.5, 1.5], [1.5, 1.5], [1.5, 0.5]]), ell)
    assert got.tolist() == [True, False, True]


def test_polygons_and_overhangs_refuse_bad_values():
    with pytest.raises(ValueError):
        polygon_from_flat([0, 0, 1, 1])
    with pytest.raises(ValueError):
        polygon_from_flat([0, 0, 1, 0, float("nan"), 1])
    with pytest.raises(ValueError):
        overhangs_from_flat([1.0, 0.1, 0.1])
    with pytest.raises(ValueError):
        overhangs_from_flat([1.0, -0.1, 0.1, 0.0])


def test_zones_grow_with_the_payload():
    empty, light, heavy, unknown = zones(0.0), zones(50.0), zones(300.0), zones(-1.0)
    assert np.allclose(empty.footprint, CHASSIS)
    assert empty.stop[:, 0].max() == pytest.approx(0.45)
    assert light.footprint[:, 0].max() == pytest.approx(0.40)
    assert heavy.footprint[:, 0].max() == pytest.approx(0.55)
    assert heavy.footprint[:, 1].max() == pytest.approx(0.375)
    # unknown payload: the largest overhang, not none
    assert np.allclose(unknown.footprint, heavy.footprint)
    assert np.allclose(grow(CHASSIS, 0.1, 0.2, 0.3)[:, 0], [0.45, 0.45, -0.55, -0.55])


def test_time_to_collision_straight_turning_and_clear():
    wall = np.array([[1.35, y] for y in np.linspace(-0.3, 0.3, 13)])  # 1 m ahead of the nose
    ttc = time_to_collision(wall, CHASSIS, 0.5, 0.0, 3.0, 0.05)
    assert ttc == pytest.approx(2.0, abs=0.06)
    assert time_to_collision(wall, CHASSIS, -0.5, 0.0, 3.0, 0.05) is None  # backing away
    assert time_to_collision(wall, CHASSIS, 0.0, 0.0, 3.0, 0.05) is None   # standing still
    # turning in place sweeps the corners: a post just beyond the corner radius is clear,
    # one just inside it is hit
    r = math.hypot(0.35, 0.275)
    assert time_to_collision(np.array([[0.0, r + 0.02]]), CHASSIS, 0.0, 1.0, 3.0, 0.02) is None
    assert time_to_collision(np.array([[0.0, r - 0.02]]), CHASSIS, 0.0, 1.0, 3.0, 0.02) \
        is not None


def test_stoppable_speed_solves_the_braking_distance():
    v = stoppable_speed(0.5, 1.0, 0.15)
    assert v * 0.15 + v * v / 2.0 == pytest.approx(0.5)
    assert stoppable_speed(-0.1, 1.0, 0.1) == 0.0


# ------------------------------------------------------------------ monitor verdict
def test_monitor_stop_slowdown_approach_free():
    cfg = cm.MonitorConfig()
    z = zones(0.0)
    assert cm.check(np.zeros((0, 2)), z, 0.7, 0.0, cfg).action == cm.FREE
    stop = cm.check(np.array([[0.40, 0.0]]), z, 0.7, 0.0, cfg)
    assert (stop.action, stop.scale, stop.points_stop) == (cm.STOP, 0.0, 1)
    slow = cm.check(np.array([[0.70, 0.0]]), z, 0.1, 0.0, cfg)  # slow: no approach limit
    assert (slow.action, slow.scale) == (cm.SLOWDOWN, cfg.slowdown_ratio)
    # 0.85 m ahead of the nose at 0.7 m/s with weak brakes (0.3 m/s^2): driving on would
    # touch it within the horizon, and the robot could not stop in time at full speed
    weak = cm.MonitorConfig(decel_linear=0.3)
    far = cm.check(np.array([[1.20, 0.0]]), z, 0.7, 0.0, weak)
    assert far.action == cm.APPROACH and 0.0 < far.scale < 1.0
    allowed = 0.7 * far.scale
    travel = allowed * weak.reaction + allowed ** 2 / (2 * weak.decel_linear)
    assert travel <= 0.85 - weak.approach_margin + 1e-9
    # with the default brakes it can stop in time: no limit; nor off to the side
    assert cm.check(np.array([[1.20, 0.0]]), z, 0.7, 0.0, cfg).action == cm.FREE
    assert cm.check(np.array([[1.20, 1.0]]), z, 0.7, 0.0, weak).action == cm.FREE


# ------------------------------------------------------------------ smoother
def test_smoother_limits_every_step_and_reaches_targets():
    s = smoother()
    dt = 0.05
    out = [s.step(0.8, 1.0, dt) for _ in range(60)]
    v = np.array([o[0] for o in out])
    assert v[-1] == pytest.approx(0.8) and out[-1][1] == pytest.approx(1.0)
    assert np.all(np.abs(np.diff(np.concatenate([[0.0], v]))) <= 1.0 * dt + 1e-12)
    acc = np.diff(np.concatenate([[0.0], v])) / dt
    assert np.all(np.abs(np.diff(np.concatenate([[0.0], acc]))) <= 5.0 * dt + 1e-9)
    assert np.all(v <= 0.8 + 1e-12)  # no overshoot
    stop = [s.step(0.0, 0.0, dt)[0] for _ in range(40)]
    assert stop[-1] == 0.0 and np.all(np.diff([0.8] + stop) <= 1e-12)
    assert np.all(np.abs(np.diff([0.8] + stop)) <= 1.0 * dt + 1e-12)
    # stop time from 0.8 m/s: v/a plus the jerk ramp a/j
    n = next(i for i, x in enumerate(stop) if x == 0.0) + 1
    assert n * dt <= 0.8 / 1.0 + 1.0 / 5.0 + 2 * dt


def test_smoother_clamps_speed_and_refuses_non_finite_and_zero_dt():
    s = smoother(jerk=0.0)
    for _ in range(100):
        s.step(5.0, -9.0, 0.1)
    assert s.output == (0.8, -1.5)
    assert s.step(0.8, -1.5, 0.0) == (0.8, -1.5)       # no time, no change
    v, w = s.step(float("nan"), 0.0, 0.1)                # NaN target: brake, not NaN
    assert math.isfinite(v) and v == pytest.approx(0.7)
    assert s.emergency_stop() == (0.0, 0.0) and s.output == (0.0, 0.0)


# ------------------------------------------------------------------ mux
def test_mux_priorities_timeouts_and_latched_estop():
    m = CommandMux(nav_timeout=0.5, teleop_timeout=0.3, estop_hold=1.0)
    assert m.select(0.0).source == "none"
    m.command(NAV, 0.5, 0.1, 0.0)
    assert m.select(0.1) == m.select(0.1) and m.select(0.1).source == NAV
    m.command(TELEOP, -0.2, 0.0, 0.2)
    assert m.select(0.3).source == TELEOP and m.select(0.3).cmd == (-0.2, 0.0)
    m.command(NAV, 0.5, 0.1, 0.45)
    assert m.select(0.6).source == NAV          # joystick silent for > 0.3 s
    assert m.select(1.0).source == "none"       # planner silent for > 0.5 s
    assert not m.command(NAV, float("inf"), 0.0, 1.0)
    m.command(NAV, 0.5, 0.0, 1.0)
    m.paused = True
    assert m.select(1.1).source == "paused" and m.select(1.1).cmd == (0.0, 0.0)
    m.paused = False
    m.estop_input(True, 1.2)
    assert m.select(1.3).source == "estop"
    ok, why = m.resume(1.5)
    assert not ok and "asserted" in why         # button still held recently
    m.estop_input(False, 1.6)                   # button out: still latched...
    assert m.select(1.7).source == "estop"
    ok, _ = m.resume(1.8)                       # ...until the explicit resume
    assert ok and m.select(1.8).source == "none"  # nav is stale by now; nothing drives


# ------------------------------------------------------------------ speed zones
def test_speed_zones_from_a_mask(tmp_path):
    y = tmp_path / "zones.yaml"
    write_mask(str(y), "zones.pgm", 10.0, 5.0, 0.1, [(2.0, 1.0, 4.0, 2.0, 25),
                                                      (6.0, 0.0, 7.0, 5.0, 50)])
    sz = SpeedZones.load(str(y), max_linear=0.8)
    assert sz.limit_at(3.0, 1.5) == pytest.approx(0.2)
    assert sz.limit_at(6.5, 4.5) == pytest.approx(0.4)
    assert sz.limit_at(1.0, 1.0) == math.inf       # no zone
    assert sz.limit_at(50.0, 1.0) == math.inf      # off the layer
    assert sz.limit_at(None, None) == pytest.approx(0.2)  # not localised: slowest
    bad = tmp_path / "bad.yaml"
    bad.write_text(y.read_text().replace("mode: raw", "mode: trinary"))
    with pytest.raises(MapError, match="raw"):
        SpeedZones.load(str(bad), 0.8)


# ------------------------------------------------------------------ gate
def gate(speed_zones=None):
    return SafetyGate(GateConfig(points_timeout=0.5), zones(0.0), CommandMux(0.5, 0.5),
                      smoother(), speed_zones)


def test_gate_stops_when_blind_silent_or_blocked_and_resumes():
    g = gate()
    g.update(0.0)
    g.set_points(np.zeros((0, 2)), 0.0)
    t, v = 0.0, []
    for _ in range(30):  # drive up to speed
        t += 0.1
        g.set_points(np.zeros((0, 2)), t)
        g.mux.command(NAV, 0.6, 0.0, t)
        out = g.update(t)
        v.append(out.cmd[0])
    assert out.action == "free" and out.cmd[0] == pytest.approx(0.6)
    # a pallet appears inside the stop zone: braked (never a step) to zero
    g.set_points(np.array([[0.42, 0.0]]), t)
    assert g.needs_update(t)
    for _ in range(15):
        t += 0.1
        g.set_points(np.array([[0.42, 0.0]]), t)
        g.mux.command(NAV, 0.6, 0.0, t)
        out = g.update(t)
        v.append(out.cmd[0])
    assert out.action == "stop" and out.cmd == (0.0, 0.0)
    assert np.all(np.abs(np.diff(v)) <= 1.0 * 0.1 + 1e-9)
    # the points are the robot itself when inside the footprint: ignored
    g.set_points(np.array([[0.2, 0.0]]), t)
    assert len(g.points) == 0
    # blind: no cloud for longer than points_timeout
    g.mux.command(NAV, 0.6, 0.0, t + 0.6)
    assert g.update(t + 0.6).action == "blind"
    # silent planner: source none, zero
    g.set_points(np.zeros((0, 2)), t + 1.5)
    out = g.update(t + 1.5)
    assert out.source == "none" and out.cmd == (0.0, 0.0)


def test_gate_estop_is_immediate_and_speed_zone_limits_navigation(tmp_path):
    y = tmp_path / "z.yaml"
    write_mask(str(y), "z.pgm", 10.0, 5.0, 0.1, [(0.0, 0.0, 5.0, 5.0, 25)])
    g = gate(SpeedZones.load(str(y), 0.8))
    t = 0.0
    for _ in range(40):
        t += 0.1
        g.set_points(np.zeros((0, 2)), t)
        g.mux.command(NAV, 0.6, 0.3, t)
        out = g.update(t, (8.0, 1.0))       # outside the zone
    assert out.cmd[0] == pytest.approx(0.6)
    for _ in range(20):
        t += 0.1
        g.set_points(np.zeros((0, 2)), t)
        g.mux.command(NAV, 0.6, 0.3, t)
        out = g.update(t, (2.0, 1.0))       # inside: 25 % of 0.8 m/s, curvature kept
    assert out.cmd[0] == pytest.approx(0.2) and out.cmd[1] == pytest.approx(0.1)
    assert out.speed_limit == pytest.approx(0.2)
    g.external_limit = 0.1                   # the fleet link is down: the lower limit wins
    g.mux.command(NAV, 0.6, 0.3, t + 0.01)
    assert g.update(t + 0.01, (2.0, 1.0)).speed_limit == pytest.approx(0.1)
    g.external_limit = math.inf
    g.mux.command(TELEOP, 0.6, 0.0, t)       # teleop is not zone-limited
    assert g.update(t + 0.05, (2.0, 1.0)).speed_limit == math.inf
    g.mux.estop_input(True, t + 0.1)
    out = g.update(t + 0.1)
    assert out.action == "estop" and out.cmd == (0.0, 0.0)


def test_speed_limit_message_as_percentage_or_absolute():
    """Nav2's SpeedLimit: a percentage of max_linear or m/s; 0 = none; nonsense refused."""
    assert external_limit(25.0, True, 0.8) == pytest.approx(0.2)
    assert external_limit(100.0, True, 0.8) == pytest.approx(0.8)
    assert external_limit(0.3, False, 0.8) == pytest.approx(0.3)
    assert external_limit(2.0, False, 0.8) == pytest.approx(2.0)   # above the base: no effect
    assert external_limit(0.0, True, 0.8) == math.inf
    assert external_limit(0.0, False, 0.8) == math.inf
    for value, percentage in ((math.nan, False), (math.nan, True), (-0.1, False),
                              (-5.0, True), (100.5, True), (math.inf, False)):
        with pytest.raises(ValueError):
            external_limit(value, percentage, 0.8)


def test_unknown_payload_hides_only_the_chassis_and_sensors_merge():
    g = SafetyGate(GateConfig(points_timeout=0.5), zones(-1.0), CommandMux(0.5, 0.5),
                   smoother())
    # 0.38 m ahead: inside the largest overhang, but the payload may not be there
    g.set_points(np.array([[0.38, 0.0]]), 0.0)
    assert len(g.points) == 1
    g.set_zones(zones(300.0))  # now known: the pallet's own edge
    g.set_points(np.array([[0.38, 0.0]]), 0.1)
    assert len(g.points) == 0
    g.set_points(np.array([[2.0, 0.0]]), 0.2, sensor="points")
    g.set_points(np.array([[0.0, 1.0]]), 0.25, sensor="scan")
    assert len(g.points) == 2            # the scan did not erase the cloud
    g.mux.command(NAV, 0.2, 0.0, 0.7)
    g.update(0.72)                       # the cloud (0.2) is stale by now, the scan is not
    assert g.points.tolist() == [[0.0, 1.0]] and not g.blind(0.72)
    assert g.update(0.8).action == "blind"


def test_gate_with_required_lidars_is_blind_while_any_is_silent_or_blind():
    g = SafetyGate(GateConfig(points_timeout=0.5, required=("points", "rear/points")),
                   zones(0.0), CommandMux(0.5, 0.5), smoother())
    g.set_points(np.zeros((0, 2)), 0.0, "points")
    assert g.blind_reason(0.0) == "no points from rear/points yet"
    g.set_points(np.zeros((0, 2)), 0.05, "rear/points")
    assert not g.blind(0.1)
    g.set_points(np.zeros((0, 2)), 0.6, "points")
    assert g.blind_reason(0.6) == "no points from rear/points for 0.55 s"
    g.set_points(np.zeros((0, 2)), 0.6, "rear/points", blind="0.0 % valid returns")
    assert g.blind_reason(0.6) == "rear/points blind: 0.0 % valid returns"
    g.mux.command(NAV, 0.3, 0.0, 0.6)
    assert g.update(0.6).action == "blind"
    g.set_points(np.zeros((0, 2)), 0.7, "rear/points")
    g.set_points(np.zeros((0, 2)), 0.7, "points")
    g.mux.command(NAV, 0.3, 0.0, 0.7)
    assert g.update(0.7).action == "free"


def test_gate_holds_commands_into_dark_sectors_and_passes_driving_away():
    g = gate()
    t = 0.0
    front = [(-0.25 * math.pi, 0.25 * math.pi)]         # the front quarter dark
    for _ in range(20):
        t += 0.1
        g.set_points(np.zeros((0, 2)), t, dark=front)
        g.mux.command(NAV, 0.5, 0.0, t)
        out = g.update(t)
    assert out.action == "blind" and out.cmd == (0.0, 0.0)
    assert g.dark_in_the_way(0.5, 0.0) == "points dark at -45..+45 deg"
    assert g.dark_in_the_way(0.0, 0.5) != ""            # turning on the spot: held
    for _ in range(20):
        t += 0.1
        g.set_points(np.zeros((0, 2)), t, dark=front)
        g.mux.command(NAV, -0.2, 0.1, t)
        out = g.update(t)
    assert out.action == "free" and out.cmd[0] == pytest.approx(-0.2)
    rear = [(0.75 * math.pi, 1.25 * math.pi)]           # wraps past +-180 deg
    g.set_points(np.zeros((0, 2)), t, dark=rear)
    assert g.dark_in_the_way(-0.2, 0.0) and not g.dark_in_the_way(0.5, 0.0)
    g.set_points(np.zeros((0, 2)), t)                   # returns back
    assert not g.dark_in_the_way(0.5, 0.0) and not g.dark_in_the_way(0.0, 0.5)
