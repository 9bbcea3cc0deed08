"""Robot states for "what if" queries, read from the fleet's Redis (wm_fleet.schema layout).

Read-only by construction: only GET, MGET, GEOSEARCH and PING are sent, so the service runs
with a Redis ACL user that may do nothing else (READ_ONLY_ACL; the README shows the ACL
SETUSER line); its FleetClient does not remove expired ids from the GEO index.
Every entry passes the same checks the robots apply (wm_fleet.schema.decode).
"""
from __future__ import annotations

import json
import time
from typing import Callable, List, Optional

from wm_fleet import schema
from wm_fleet.client import FleetClient
from wm_fleet.connection import RedisConfig, connect


# The ACL rules of the service's Redis user: the fleet's keys, these four commands, no
# channels. Anything else (SET, DEL, ZREM, PUBLISH, CONFIG...) is refused with NOPERM.
READ_ONLY_ACL = "resetkeys ~wm:fleet:* resetchannels -@all +get +mget +geosearch +ping"


class FleetUnavailable(RuntimeError):
    """Redis could not be asked (down, refused, no permission)."""


class RobotNotFound(KeyError):
    pass


class FleetStates:
    def __init__(self, cfg: RedisConfig, fleet: str, frame: str = "map",
                 wall: Callable[[], float] = time.time):
        self.fleet = fleet
        self.prefix, _, _ = schema.keys(fleet)
        self.frame = frame
        self.wall = wall
        self._cfg = cfg
        self._redis = None

    def _client(self):
        if self._redis is None:
            self._redis = connect(self._cfg)
        return self._redis

    def _ask(self, fn):
        import redis

        try:
            return fn(self._client())
        except (redis.RedisError, OSError) as e:
            raise FleetUnavailable("%s: %s" % (type(e).__name__, e)) from None

    def _decode(self, raw: bytes, ros_now: float) -> schema.RobotEntry:
        return schema.decode(raw, frame=self.frame, wall_now=self.wall(), ros_now=ros_now)

    def robot(self, robot_id: str) -> schema.RobotEntry:
        """The robot's current entry (RobotNotFound when it has none: not running, or its
        TTL ran out; schema.EntryError when what it wrote fails the checks)."""
        if not schema.ID_RE.match(robot_id):
            raise schema.EntryError("bad_id", "robot id %r" % robot_id)
        raw = self._ask(lambda r: r.get(self.prefix + robot_id))
        if raw is None:
            raise RobotNotFound(robot_id)
        # The service has no ROS clock: the entry's own stamp is "now" for its trajectory
        # checks; liveness still follows the wall clock (max_age).
        try:
            stamp = float(json.loads(raw.decode("utf-8")).get("stamp"))
        except (ValueError, TypeError, AttributeError, UnicodeDecodeError):
            stamp = 0.0
        entry = self._decode(raw, stamp)
        if entry.robot_id != robot_id:
            raise schema.EntryError("id_mismatch", "entry of %s says %s"
                                    % (robot_id, entry.robot_id))
        return entry

    def neighbours(self, entry: schema.RobotEntry, radius: float) -> List[schema.RobotEntry]:
        """Valid entries of the other robots within `radius` of `entry`'s robot: the robots'
        own read (FleetClient.neighbours), without its pruning write, at the entry's time."""
        reader = FleetClient(self._client(), self.fleet, entry.robot_id, frame=self.frame,
                             wall=self.wall, prune_expired=False)
        out = reader.neighbours(entry.pose[0], entry.pose[1], radius, ros_now=entry.stamp)
        if out is None:
            raise FleetUnavailable(reader.last_error)
        return out

    def ping(self) -> Optional[str]:
        """None when Redis answers, else why not (for /healthz)."""
        try:
            self._ask(lambda r: r.ping())
        except FleetUnavailable as e:
            return str(e)
        return None
