"""What one robot shares with the fleet, as stored in Redis (schema version 1), and the checks
every entry read back must pass.

Keys (`{fleet}` is a Redis Cluster hash tag: one fleet's keys share a slot, so one pipeline
reads them; Cluster spreads fleets, i.e. sites or zones, over shards):

    wm:fleet:{<fleet>}:v1:robot:<id>   JSON below, written with SET ... PX <ttl_ms>: a robot
                                       that stops writing disappears after its TTL
    wm:fleet:{<fleet>}:v1:geo          GEO index of robot positions (map metres as a local
                                       tangent plane), for the radius query
    wm:fleet:{<fleet>}:v1:updates      pub/sub channel: the id of every robot that wrote

The entry (JSON, UTF-8, at most MAX_BYTES):

    {"schema": 1, "id": "robot1", "frame": "map",
     "stamp": 12.3,              # ROS time of the pose [s] (the robot's clock; sim time in sim)
     "wall": 1795736149.1,       # wall-clock time of the write [s] (liveness, chrony-synced)
     "pose": [x, y, yaw], "velocity": [v, w],
     "footprint": [[x, y], ...], # base_link polygon incl. payload [m]
     "priority": 0,              # task priority, higher wins a conflict
     "trajectory": [[t, x, y], ...],  # intended path, t in the robot's ROS time [s]
     "model": "worldmodel-1.0.0"}

Liveness follows the wall clock (TTL, `wall`); trajectory times follow each robot's ROS clock,
so a simulation on sim time works as a fleet on chrony-synced robots does. Readers reject,
and count, anything malformed, oversized, of another schema version, from the future or far
in the past, or with non-finite numbers.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

SCHEMA_VERSION = 1
MAX_BYTES = 16384
MAX_TRAJECTORY = 100
MAX_FOOTPRINT = 32
MAX_COORD = 1.0e5          # |x|, |y| beyond this is a corrupt entry, not a warehouse [m]
MAX_SPEED = 20.0
ID_RE = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")


class EntryError(ValueError):
    """An entry that must not be used; `.reason` is a short counter name."""

    def __init__(self, reason: str, message: str):
        super().__init__("%s: %s" % (reason, message))
        self.reason = reason


def keys(fleet: str) -> Tuple[str, str, str]:
    """(robot key prefix, geo key, updates channel) of a fleet."""
    if not ID_RE.match(fleet):
        raise ValueError("fleet name %r: letters, digits, '_' or '-', 1-64 characters" % fleet)
    base = "wm:fleet:{%s}:v%d:" % (fleet, SCHEMA_VERSION)
    return base + "robot:", base + "geo", base + "updates"


@dataclass(frozen=True)
class RobotEntry:
    robot_id: str
    frame: str
    stamp: float
    wall: float
    pose: Tuple[float, float, float]
    velocity: Tuple[float, float]
    footprint: Tuple[Tuple[float, float], ...]
    priority: int
    trajectory: Tuple[Tuple[float, float, float], ...]   # (t, x, y)
    model: str = ""

    @property
    def radius(self) -> float:
        """Circumscribed radius of the footprint [m]."""
        return max(math.hypot(x, y) for x, y in self.footprint)

    def encode(self) -> bytes:
        doc = {"schema": SCHEMA_VERSION, "id": self.robot_id, "frame": self.frame,
               "stamp": self.stamp, "wall": self.wall, "pose": list(self.pose),
               "velocity": list(self.velocity),
               "footprint": [list(p) for p in self.footprint], "priority": self.priority,
               "trajectory": [list(p) for p in self.trajectory], "model": self.model}
        raw = json.dumps(doc, separators=(",", ":"), allow_nan=False).encode()
        if len(raw) > MAX_BYTES:
            raise EntryError("oversized", "%d bytes > %d" % (len(raw), MAX_BYTES))
        return raw


def _num(v, what: str, limit: float = MAX_COORD) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise EntryError("bad_type", "%s is not a number: %r" % (what, v))
    f = float(v)
    if not math.isfinite(f):
        raise EntryError("non_finite", "%s = %r" % (what, v))
    if abs(f) > limit:
        raise EntryError("absurd", "%s = %r" % (what, v))
    return f


MAX_TIME = 1.0e12           # seconds: any clock, wall or ROS


def _rows(v, what: str, limits: Sequence[float], max_n: int) -> List[Tuple[float, ...]]:
    """A list of at most max_n rows of len(limits) numbers, column j within +-limits[j]."""
    if not isinstance(v, list) or len(v) > max_n:
        raise EntryError("bad_type" if not isinstance(v, list) else "oversized",
                         "%s must be a list of at most %d items" % (what, max_n))
    out = []
    for i, p in enumerate(v):
        if not isinstance(p, list) or len(p) != len(limits):
            raise EntryError("bad_type", "%s[%d] must have %d numbers" % (what, i,
                                                                           len(limits)))
        out.append(tuple(_num(x, "%s[%d]" % (what, i), lim) for x, lim in zip(p, limits)))
    return out


def decode(raw: Optional[bytes], *, frame: str, wall_now: float, ros_now: float,
           max_age: float = 2.0, max_future: float = 0.5, time_tolerance: float = 1.0
           ) -> RobotEntry:
    """Parse and check one entry read from Redis (EntryError with the reason otherwise).

    wall_now: this robot's wall clock; an entry written more than `max_age` ago (a TTL that
    outlived its writer) or more than `max_future` ahead is refused. ros_now: this robot's
    ROS clock; the neighbour's pose stamp and trajectory must lie within `time_tolerance` of
    it (plus the trajectory's own length), i.e. the clocks agree within that bound."""
    if raw is None:
        raise EntryError("missing", "no entry")
    if len(raw) > MAX_BYTES:
        raise EntryError("oversized", "%d bytes > %d" % (len(raw), MAX_BYTES))
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise EntryError("malformed", "not JSON: %s" % e) from None
    if not isinstance(doc, dict):
        raise EntryError("malformed", "not a JSON object")
    if doc.get("schema") != SCHEMA_VERSION:
        raise EntryError("schema_version", "schema %r, this robot reads %d"
                         % (doc.get("schema"), SCHEMA_VERSION))
    rid = doc.get("id")
    if not isinstance(rid, str) or not ID_RE.match(rid):
        raise EntryError("bad_id", "id %r" % (rid,))
    if doc.get("frame") != frame:
        raise EntryError("frame", "frame %r, expected %r" % (doc.get("frame"), frame))
    wall = _num(doc.get("wall"), "wall", MAX_TIME)
    if wall_now - wall > max_age:
        raise EntryError("too_old", "written %.2f s ago" % (wall_now - wall))
    if wall - wall_now > max_future:
        raise EntryError("future", "written %.2f s in the future" % (wall - wall_now))
    stamp = _num(doc.get("stamp"), "stamp", MAX_TIME)
    if abs(stamp - ros_now) > time_tolerance + max_age:
        raise EntryError("clock", "pose stamp %.2f s from this robot's clock"
                         % (stamp - ros_now))
    pose = _rows([doc.get("pose")], "pose", (MAX_COORD, MAX_COORD, MAX_COORD), 1)[0]
    vel = _rows([doc.get("velocity")], "velocity", (MAX_COORD, MAX_COORD), 1)[0]
    if max(abs(vel[0]), abs(vel[1])) > MAX_SPEED:
        raise EntryError("absurd", "velocity %r" % (vel,))
    foot = _rows(doc.get("footprint"), "footprint", (MAX_COORD, MAX_COORD), MAX_FOOTPRINT)
    if len(foot) < 3 or max(math.hypot(*p) for p in foot) > 10.0:
        raise EntryError("bad_footprint", "footprint needs 3..%d points within 10 m"
                         % MAX_FOOTPRINT)
    prio = doc.get("priority")
    if isinstance(prio, bool) or not isinstance(prio, int) or not 0 <= prio <= 255:
        raise EntryError("bad_type", "priority %r (0..255)" % (prio,))
    traj = _rows(doc.get("trajectory"), "trajectory", (MAX_TIME, MAX_COORD, MAX_COORD),
                 MAX_TRAJECTORY)
    if any(b[0] <= a[0] for a, b in zip(traj, traj[1:])):
        raise EntryError("bad_trajectory", "trajectory times must increase")
    if traj and (traj[0][0] - ros_now > time_tolerance
                 or ros_now - traj[-1][0] > time_tolerance + max_age):
        raise EntryError("clock", "trajectory %.2f..%.2f s, this robot's clock %.2f s"
                         % (traj[0][0], traj[-1][0], ros_now))
    model = doc.get("model", "")
    if not isinstance(model, str) or len(model) > 128:
        raise EntryError("bad_type", "model must be a short string")
    return RobotEntry(rid, frame, stamp, wall, pose, vel, tuple(foot), prio, tuple(traj),
                      model)


def trajectory_from(times: Sequence[float], xy: Sequence[Sequence[float]]
                    ) -> Tuple[Tuple[float, float, float], ...]:
    return tuple((float(t), float(p[0]), float(p[1])) for t, p in zip(times, xy))
