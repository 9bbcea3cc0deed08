"""Recovery behaviours: small bounded manoeuvres tried when the robot makes no progress, in
the order the `recovery_behaviors` parameter lists them (Nav2's behaviour tree runs clear
costmaps, spin, wait and back up the same way, each reporting success or failure).

Each behaviour is a small class: `start(ctx)` says whether it can run here (None) or why not
(a reason: the rear is not clear, the turn is not clear, ...), then `step(ctx)` returns a
command per control cycle until it returns None (done). Every command still passes the
controller's command limiter (velocity and acceleration limits) and, downstream, the safety
gate (zones, e-stop); the behaviours themselves only move where the distance field shows
room for the footprint polygon, with `margin` to spare, so a recovery never drives into what
the robot can see. Each is bounded in time.

* reroute: where the route ahead squeezes through a narrow passage (clearance less than
  robot_radius + 0.15 m within 1.5 m ahead), declare that passage impassable for this goal
  and replan: the way round, or "no way" when there is none. A gap the MPC cannot thread
  (misaligned, tighter than it looked) costs one progress timeout, not the goal. Skipped
  where nothing ahead is narrow. Takes no time. The controller tries it first at every
  progress failure, not only at its turn in the list (one more squeeze closed each time;
  a box leaving two narrow gaps takes two).
* clear_and_replan: forget the obstacles the route's live layer remembers and replan now
  (a pallet that has been taken away, another robot that has left), and drop the MPC's warm
  start. Takes no time.
* back_up: back out the way the robot came, `backup_distance` at `backup_speed`: in reverse
  along its own recent path (its body has just fitted through there; a pocket it drove into
  is left the way it was entered), straight back where it has none; while the footprint's
  way back is clear.
* spin: turn on the spot by `spin_angle` towards the way to the goal (the other way when
  that side has no room), while the circle the corners sweep is clear or, wedged where it
  is not, while the footprint polygon keeps `margin` over the next 0.3 rad of the turn.
* wait: stand still for `wait_time` (another robot may pass, a person may step aside).

Plain Python (no rclpy); Python 3.8 compatible.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Sequence, Tuple

from wm_common.footprint import Footprint
from wm_common.geometry import wrap_angle
from wm_common.grid import Grid2D

from .clearance import footprint_clearance, point_clearance, turn_clearance


@dataclass
class RecoveryContext:
    """What a behaviour may look at in one cycle (odom frame)."""

    now: float
    x: float
    y: float
    yaw: float
    v: float
    field: Optional[Grid2D]
    footprint: Footprint
    heading_error: Optional[float] = None   # signed angle to the way to the goal [rad]
    # the robot's own recent path, oldest first (odom): a way it knows it fitted through
    trail: Sequence[Tuple[float, float]] = ()


class Recovery:
    name = "recovery"

    def __init__(self, margin: float = 0.05, time_allowance: float = 10.0):
        self.margin = float(margin)
        self.time_allowance = float(time_allowance)
        self.t0 = 0.0

    def start(self, ctx: RecoveryContext) -> Optional[str]:
        """None when the behaviour can run from here; else why not (it is then skipped)."""
        self.t0 = ctx.now
        return None

    def step(self, ctx: RecoveryContext) -> Optional[Tuple[float, float]]:
        """(v, w) for this cycle, or None when done."""
        raise NotImplementedError

    def timed_out(self, ctx: RecoveryContext) -> bool:
        return ctx.now - self.t0 > self.time_allowance


class ClearAndReplan(Recovery):
    name = "clear_and_replan"

    def __init__(self, clear: Callable[[], None], **kw):
        super().__init__(**kw)
        self._clear = clear

    def start(self, ctx):
        super().start(ctx)
        self._clear()
        return None

    def step(self, ctx):
        return None


class Reroute(Recovery):
    name = "reroute"

    def __init__(self, reroute: Callable[[], Optional[str]], **kw):
        super().__init__(**kw)
        self._reroute = reroute

    def start(self, ctx):
        super().start(ctx)
        return self._reroute()

    def step(self, ctx):
        return None


class BackUp(Recovery):
    """Back out the way the robot came: in reverse along its own recent path (the trail,
    which its body has just fitted through), steering the rear towards the trail point
    `probe_ahead` behind it; straight back where there is no trail. Stops after `distance`
    or where the footprint would come closer than `margin` to what the field shows."""

    name = "back_up"

    def __init__(self, distance: float = 0.6, speed: float = 0.1, probe: float = 0.05,
                 w_max: float = 0.5, **kw):
        super().__init__(**kw)
        if not (distance > 0.0 and speed > 0.0):
            raise ValueError("back_up: distance and speed must be positive")
        self.distance, self.speed, self.probe = float(distance), float(speed), float(probe)
        self.w_max = float(w_max)
        self.origin = (0.0, 0.0)
        self.travelled = 0.0
        self.last = (0.0, 0.0)
        self.path: list = []

    def _clear_after(self, ctx, v: float, w: float, t: float) -> bool:
        """The footprint `t` seconds along (v, w) from here keeps the margin, or, where the
        robot stands closer than that already (backed into a squeeze), gets no closer."""
        yaw = ctx.yaw + w * t
        x = ctx.x + v * t * math.cos(0.5 * (ctx.yaw + yaw))
        y = ctx.y + v * t * math.sin(0.5 * (ctx.yaw + yaw))
        here = footprint_clearance(ctx.field, ctx.footprint, ctx.x, ctx.y, ctx.yaw)
        need = min(self.margin, here - 0.005)
        return footprint_clearance(ctx.field, ctx.footprint, x, y, yaw) >= need

    def _command(self, ctx) -> Tuple[float, float]:
        """Reverse pure pursuit of the trail (w steers the rear towards its target)."""
        while self.path and math.hypot(self.path[-1][0] - ctx.x,
                                       self.path[-1][1] - ctx.y) < 0.25:
            self.path.pop()
        if not self.path:
            return -self.speed, 0.0
        tx, ty = self.path[-1]
        rear = ctx.yaw + math.pi
        alpha = float(wrap_angle(math.atan2(ty - ctx.y, tx - ctx.x) - rear))
        if abs(alpha) > 0.5 * math.pi:    # the trail is ahead of the rear: straight back
            return -self.speed, 0.0
        return -self.speed, max(-self.w_max, min(self.w_max, 1.5 * alpha))

    def start(self, ctx):
        super().start(ctx)
        self.origin = self.last = (ctx.x, ctx.y)
        self.travelled = 0.0
        self.path = [p for p in ctx.trail if math.hypot(p[0] - ctx.x, p[1] - ctx.y) > 0.05]
        v, w = self._command(ctx)
        if not self._clear_after(ctx, v, w, 0.1 / self.speed):
            return "no room behind the robot"
        return None

    def step(self, ctx):
        self.travelled += math.hypot(ctx.x - self.last[0], ctx.y - self.last[1])
        self.last = (ctx.x, ctx.y)
        if self.travelled >= self.distance or self.timed_out(ctx):
            return None
        v, w = self._command(ctx)
        # one cycle at this command plus the braking distance must stay clear
        if not self._clear_after(ctx, v, w, (self.probe + self.speed * 0.2) / self.speed):
            return None
        return v, w


# how far ahead a turn's footprint must be clear, beyond the corners' circle [rad]
PROBE_ANGLE = 0.3


class Spin(Recovery):
    name = "spin"

    def __init__(self, angle: float = 1.57, speed: float = 0.6, **kw):
        super().__init__(**kw)
        if not (angle > 0.0 and speed > 0.0):
            raise ValueError("spin: angle and speed must be positive")
        self.angle, self.speed = float(angle), float(speed)
        self.turned = 0.0
        self.last_yaw = 0.0
        self.sign = 1.0

    def _room(self, ctx, sign: float) -> bool:
        """The circle the corners sweep is clear, or the footprint polygon keeps `margin`
        while it turns the next PROBE_ANGLE towards `sign`."""
        if ctx.field is None:
            return True
        if point_clearance(ctx.field, ctx.x, ctx.y) >= ctx.footprint.circumscribed_radius \
                + self.margin:
            return True
        return turn_clearance(ctx.field, ctx.footprint, ctx.x, ctx.y, ctx.yaw,
                              sign * PROBE_ANGLE) >= self.margin

    def start(self, ctx):
        super().start(ctx)
        first = 1.0 if ctx.heading_error is None or ctx.heading_error >= 0.0 else -1.0
        for sign in (first, -first):     # towards the way, else the side with room
            if self._room(ctx, sign):
                self.sign = sign
                break
        else:
            return "no room to turn either way"
        self.turned = 0.0
        self.last_yaw = ctx.yaw
        return None

    def step(self, ctx):
        self.turned += abs(float(wrap_angle(ctx.yaw - self.last_yaw)))
        self.last_yaw = ctx.yaw
        if self.turned >= self.angle or self.timed_out(ctx) or not self._room(ctx, self.sign):
            return None
        return 0.0, self.sign * self.speed


class Wait(Recovery):
    name = "wait"

    def __init__(self, duration: float = 5.0, **kw):
        super().__init__(**kw)
        self.duration = float(duration)

    def step(self, ctx):
        if ctx.now - self.t0 >= self.duration:
            return None
        return 0.0, 0.0


RECOVERY_NAMES = ("reroute", "clear_and_replan", "back_up", "spin", "wait")


def build_recoveries(names: Sequence[str], p: Dict, clear: Callable[[], None],
                     reroute: Callable[[], Optional[str]]) -> Tuple[Recovery, ...]:
    """The behaviours `names` lists, in that order, from the planner's parameters; `clear`
    and `reroute` act on the controller's route."""
    out: list = []
    margin = p.get("recovery_margin", 0.05)
    for name in names:
        if name == "reroute":
            out.append(Reroute(reroute, margin=margin))
        elif name == "clear_and_replan":
            out.append(ClearAndReplan(clear, margin=margin))
        elif name == "back_up":
            d, s = p.get("backup_distance", 0.6), p.get("backup_speed", 0.1)
            out.append(BackUp(d, s, margin=margin, time_allowance=2.0 * d / s + 1.0))
        elif name == "spin":
            a, s = p.get("spin_angle", 1.57), min(p.get("rotate_speed", 0.6),
                                                   p.get("w_max", 1.2))
            out.append(Spin(a, s, margin=margin, time_allowance=2.0 * a / s + 1.0))
        elif name == "wait":
            out.append(Wait(p.get("wait_time", 5.0), margin=margin))
        else:
            raise ValueError("unknown recovery behaviour %r; known: %s" % (
                name, ", ".join(RECOVERY_NAMES)))
    return tuple(out)
