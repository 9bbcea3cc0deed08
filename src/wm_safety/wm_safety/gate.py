"""The safety gate: everything between the planner and the wheels, in the order it applies.

    mux (e-stop > pause > teleop > navigation, each with a timeout)
      -> speed limits: the zone layer and the `speed_limit` topic (navigation only)
      -> collision monitor on the newest raw points (stop / escape / slowdown / approach)
      -> velocity smoother (speed, acceleration, jerk; an e-stop bypasses it)
      -> the base

Plain Python, no ROS: the node (collision_monitor_node.py) feeds it messages and publishes what
`update()` returns. It stops the robot whenever it cannot see and whenever nobody commands it.
Cannot see: a `required` sensor (each LiDAR) has no points newer than `points_timeout`, or its
node found it blind (fresh clouds without returns: wm_perception.blindness); without required
sensors, no sensor has fresh points. A sensor blind in some azimuth sectors only (half
covered) holds every command that would move the robot into them: forward when a dark sector
faces forward (base-frame azimuth within +-90 deg), backward when one faces back, and turning
on the spot; driving straight away from the dark side passes (the other sectors still see).

Escape (a safety decision; the rule is in decision.py). A point in the stop zone
stops the robot, so two robots nose to nose, or a robot whose stop zone touches a shelf
after a localization jump, would stay frozen for good: backing away is stopped too (Nav2's
collision monitor leaves its robots stuck there). Navigation and teleop commands alike may
therefore still pass a stop as a slow creep (escape_speed, escape_angular_speed) whose swept
footprint never takes a point inside and whose clearance to the points grows strictly over
the first step and never falls below its current value over escape_horizon. The velocity
smoother still applies afterwards (it only lowers speeds). Its axes ramp at their own rates,
so left alone it would turn before it backs: an escape is ramped along the creep's (v, w)
direction (`VelocitySmoother.along`), and whatever goes to the base is checked by the same
rule before it is sent; if nothing passes, the target is zero, as for any stop. While
escaping, every new cloud is acted on at once. Never escaped: the e-stop, pause, and
blindness (no fresh points). The escape judges the last cloud's points: a point that appears
between two clouds is not seen earlier than by the rest of the monitor, and none of this is
a certified safety function.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional, Sequence, Tuple

import numpy as np

from wm_safety import decision as cm
from wm_safety.mux import NAV, TELEOP, CommandMux
from wm_safety.smoother import VelocitySmoother
from wm_safety.speed_zones import SpeedZones
from wm_safety.zones import Zones, crop, points_in_polygon


MOVING = 1e-3   # |v| [m/s] or |w| [rad/s] above which a command moves the robot


def _overlaps(lo: float, hi: float, a: float, b: float) -> bool:
    """Whether the azimuth intervals (lo, hi) and (a, b) overlap (open, modulo 2 pi)."""
    two_pi = 2.0 * math.pi
    for k in (-1, 0, 1):
        if lo + k * two_pi < b and a < hi + k * two_pi:
            return True
    return False


@dataclass(frozen=True)
class GateConfig:
    points_timeout: float = 0.5   # older points: the monitor is blind, stop [s]
    max_dt: float = 0.1           # longest step the smoother integrates at once [s]
    required: Tuple[str, ...] = ()  # sensors that must all see (each LiDAR), see blind()
    monitor: cm.MonitorConfig = field(default_factory=cm.MonitorConfig)


@dataclass(frozen=True)
class GateOutput:
    cmd: Tuple[float, float]          # to the base
    requested: Tuple[float, float]    # what the selected source asked for
    source: str                       # nav, teleop, estop, paused, none
    action: str                       # free, slowdown, approach, stop, escape, blind, ...
    scale: float                      # collision monitor's scale (1 = none)
    speed_limit: float                # zone limit on |v| in force [m/s] (inf = none)
    points_stop: int
    points_slowdown: int
    time_to_collision: Optional[float]
    clearance: Optional[float] = None  # footprint -> nearest point when a stop was checked [m]


class SafetyGate:
    def __init__(self, cfg: GateConfig, zones: Zones, mux: CommandMux,
                 smoother: VelocitySmoother, speed_zones: Optional[SpeedZones] = None):
        self.cfg = cfg
        self.zones = zones
        self.mux = mux
        self.smoother = smoother
        self.speed_zones = speed_zones
        self.points = np.zeros((0, 2))
        self.points_stamp: Optional[float] = None
        self._sensors = {}  # sensor name -> (points, stamp)
        self._blind = {}    # sensor name -> why it is blind ('' or absent: it sees)
        self._dark = {}     # sensor name -> base-frame azimuth intervals it cannot see [rad]
        self.last_update: Optional[float] = None
        self.last_scale = 1.0
        self.last_action = ""
        # a limit on |v| from another node (the fleet client while Redis is unreachable)
        self.external_limit = math.inf

    def set_points(self, xy: np.ndarray, stamp: float, sensor: str = "points",
                   blind: str = "", dark: Sequence[Tuple[float, float]] = ()) -> None:
        """The newest obstacle points (M, 2) in base_link from one sensor, height-filtered.
        Points inside the chassis (and a known payload) are the robot itself. Sensors are
        merged: a 2D scan does not erase what the 3D LiDAR saw; each sensor's points count
        while they are fresh. `blind`: why this sensor's fresh cloud cannot be trusted
        (no returns); a required sensor that is blind or silent blinds the gate. `dark`:
        the base-frame azimuth intervals (lo, hi) [rad] of its sectors that went dark."""
        near = crop(np.asarray(xy, dtype=np.float64), self.zones.reach)
        self._sensors[sensor] = (near[~points_in_polygon(near, self.zones.self_filter)], stamp)
        self._blind[sensor] = blind
        self._dark[sensor] = [(float(a), float(b)) for a, b in dark]
        self._merge(stamp)

    def _merge(self, now: float) -> None:
        fresh = [(p, t) for p, t in self._sensors.values()
                 if now - t <= self.cfg.points_timeout]
        self.points = np.concatenate([p for p, _ in fresh]) if fresh else np.zeros((0, 2))
        self.points_stamp = max((t for _, t in fresh), default=self.points_stamp)

    def set_zones(self, zones: Zones) -> None:
        """New zones (the payload changed); the next cloud is filtered with them."""
        self.zones = zones
        self._sensors = {k: (crop(p, zones.reach), t) for k, (p, t) in self._sensors.items()}
        self.points = crop(self.points, zones.reach)

    def needs_update(self, now: float) -> bool:
        """Should a new cloud be acted on at once, rather than with the next command? Yes
        when an input that drove has gone silent, under e-stop or pause (continuous zero
        at the sensor's pace), and when the new points allow less than the last output did
        (an obstacle appeared: the base must not wait a cycle). Not before any command was
        ever heard: a simulator in lockstep would take that zero as the robot's answer and
        run ahead of the starting planner (the timer sends zero meanwhile)."""
        sel = self.mux.select(now)
        if sel.source in ("estop", "paused"):
            return True
        if sel.source == "none":
            return any(self.mux.last_stamp(s) is not None for s in (NAV, TELEOP))
        if self.last_action == cm.ESCAPE:
            return True  # an escape is checked against every new cloud
        if self.last_scale <= 1e-3:
            return False  # stopped already: nothing can allow less
        verdict = cm.check(self.points, self.zones, sel.cmd[0], sel.cmd[1], self.cfg.monitor)
        return verdict.scale < self.last_scale - 1e-3

    def blind(self, now: float) -> bool:
        return bool(self.blind_reason(now))

    def blind_reason(self, now: float) -> str:
        """Why the gate cannot see now ('' when it can)."""
        for sensor in self.cfg.required:
            if self._blind.get(sensor):
                return "%s blind: %s" % (sensor, self._blind[sensor])
            entry = self._sensors.get(sensor)
            if entry is None:
                return "no points from %s yet" % sensor
            if now - entry[1] > self.cfg.points_timeout:
                return "no points from %s for %.2f s" % (sensor, now - entry[1])
        t = self.points_stamp
        if t is None or now - t > self.cfg.points_timeout:
            return "no points" if t is None else "no points for %.2f s" % (now - t)
        return ""

    def dark_in_the_way(self, v: float, w: float) -> str:
        """Which dark sector the command (v, w) would move the robot into ('' if none)."""
        for sensor, intervals in self._dark.items():
            for lo, hi in intervals:
                ahead = _overlaps(lo, hi, -0.5 * math.pi, 0.5 * math.pi)
                behind = _overlaps(lo, hi, 0.5 * math.pi, 1.5 * math.pi)
                if (v > MOVING and ahead) or (v < -MOVING and behind) or (
                        abs(v) <= MOVING and abs(w) > MOVING):
                    return "%s dark at %+.0f..%+.0f deg" % (sensor, math.degrees(lo),
                                                           math.degrees(hi))
        return ""

    def update(self, now: float, position: Optional[Tuple[float, float]] = None,
               ) -> GateOutput:
        """The command for the base at time `now`; `position` is the robot in the speed
        zones' map frame (None: not localised)."""
        dt = 0.0 if self.last_update is None else now - self.last_update
        dt = min(max(dt, 0.0), self.cfg.max_dt)
        self.last_update = now
        self._merge(now)  # a sensor gone quiet stops counting (and may leave the gate blind)
        sel = self.mux.select(now)
        v, w = sel.cmd
        limit = math.inf
        if sel.source == NAV:
            if self.speed_zones is not None:
                limit = self.speed_zones.limit_at(*(position or (None, None)))
            limit = min(limit, self.external_limit)
            if abs(v) > limit:
                k = limit / abs(v)
                v, w = v * k, w * k
        self.last_scale = 0.0
        self.last_action = ""
        if sel.source == "estop":
            cmd = self.smoother.emergency_stop()
            return GateOutput(cmd, sel.cmd, sel.source, "estop", 0.0, limit, 0, 0, None)
        if self.blind(now) or (sel.source in (NAV, TELEOP) and self.dark_in_the_way(v, w)):
            cmd = self.smoother.step(0.0, 0.0, dt)
            return GateOutput(cmd, sel.cmd, sel.source, "blind", 0.0, limit, 0, 0, None)
        if sel.source not in (NAV, TELEOP):
            v, w = 0.0, 0.0  # paused or nobody commands: nothing to escape with
        verdict = cm.check(self.points, self.zones, v, w, self.cfg.monitor)
        action, scale = verdict.action, verdict.scale
        cmd = None
        if action == cm.ESCAPE:
            cmd = self._escape_output(v * scale, w * scale, dt)
            if cmd is None:
                action, scale = cm.STOP, 0.0
        if cmd is None:
            cmd = self.smoother.step(v * scale, w * scale, dt)
        self.last_scale = scale if sel.source in (NAV, TELEOP) else 0.0
        self.last_action = action
        action = action if sel.source not in ("none", "paused") else sel.source
        return GateOutput(cmd, sel.cmd, sel.source, action, scale, limit,
                          verdict.points_stop, verdict.points_slowdown,
                          verdict.time_to_collision, verdict.clearance)

    def _escape_output(self, v: float, w: float, dt: float
                       ) -> Optional[Tuple[float, float]]:
        """What goes to the base for the escape creep (v, w), or None when nothing would be
        an escape. The smoother still limits it; its step is kept on the creep's path where
        it can be (its axes ramp at their own rates and would turn before they back), and
        whatever it sends must pass the escape rule itself: it is what moves the robot."""
        m = self.cfg.monitor
        for out in (self.smoother.along(v, w, dt), self.smoother.preview(v, w, dt)):
            if out is None:
                continue
            if out == (0.0, 0.0) or (cm.is_creep(out[0], out[1], m) and cm.escape_sweep(
                    self.points, self.zones.footprint, out[0], out[1], m.escape_horizon,
                    m.time_step)[0]):
                return self.smoother.set_output(out[0], out[1], dt)
        return None
