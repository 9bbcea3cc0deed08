"""The fleet client: write this robot's entry, read the neighbours within a radius, and keep
going when Redis does not answer.

One pipeline per control cycle writes (SET with a TTL, GEOADD, PUBLISH) and one reads
(GEOSEARCH, then one MGET): about 5 commands per robot per cycle. Every Redis error marks
the fleet link down; while down, calls are skipped until the next retry time (exponential
backoff with jitter, so a restarted server is not stormed by a whole fleet at once) and the
caller gets no neighbours, knows they are stale, and slows the robot down. The link comes
back by itself on the first call that succeeds.

Plain Python + redis-py (<= 6.1 on the robots); no rclpy.
"""
from __future__ import annotations

import math
import random
import time
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

from wm_fleet import schema

# Map metres <-> degrees on Redis's GEO sphere (radius 6372797.560856 m): distances Redis
# computes between nearby members are then metres within 0.01 %.
METRES_PER_DEGREE = 6372797.560856 * math.pi / 180.0

try:  # the errors that mean "the link is down", not "our request was wrong"
    from redis.exceptions import ConnectionError as _RedisConnectionError
    from redis.exceptions import RedisError
    from redis.exceptions import TimeoutError as _RedisTimeoutError
    from redis.exceptions import RedisClusterException
    LINK_ERRORS = (_RedisConnectionError, _RedisTimeoutError, OSError)
    REQUEST_ERRORS = (RedisError, RedisClusterException)
except ImportError:  # pragma: no cover - redis is a dependency
    LINK_ERRORS = (OSError,)
    REQUEST_ERRORS = (Exception,)


def to_lonlat(x: float, y: float):
    return x / METRES_PER_DEGREE, y / METRES_PER_DEGREE


@dataclass
class Backoff:
    initial: float = 0.2
    maximum: float = 5.0
    failures: int = 0
    next_try: float = 0.0

    def failed(self, now: float) -> None:
        self.failures += 1
        delay = min(self.maximum, self.initial * 2 ** (self.failures - 1))
        self.next_try = now + delay * random.uniform(0.5, 1.0)

    def ok(self) -> None:
        self.failures = 0
        self.next_try = 0.0

    def may_try(self, now: float) -> bool:
        return now >= self.next_try


class FleetClient:
    def __init__(self, redis, fleet: str, robot_id: str, *, ttl: float = 1.0,
                 frame: str = "map", max_age: float = 2.0, max_future: float = 0.5,
                 time_tolerance: float = 1.0, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time, prune_expired: bool = True):
        """prune_expired: remove robots whose entry ran out from the GEO index (a write; a
        read-only reader such as the world-model service turns it off)."""
        if not schema.ID_RE.match(robot_id):
            raise ValueError("robot id %r: letters, digits, '_' or '-'" % robot_id)
        if not ttl > 0.0:
            raise ValueError("ttl must be positive")
        # a client, or a factory that makes one (RedisCluster talks to the server when it
        # is built: a robot that starts while Redis is down must still start)
        self._factory = redis if callable(redis) and not hasattr(redis, "pipeline") else None
        self.redis = None if self._factory is not None else redis
        self.cluster = hasattr(redis, "get_nodes")  # redis.cluster.RedisCluster
        self.robot_id = robot_id
        self.prefix, self.geo_key, self.channel = schema.keys(fleet)
        self.ttl_ms = int(round(ttl * 1000))
        self.frame = frame
        self.max_age, self.max_future, self.time_tolerance = max_age, max_future, time_tolerance
        self.clock, self.wall = clock, wall
        self.prune_expired = prune_expired
        self.backoff = Backoff()
        self.up = False
        self.last_error = ""
        self.down_since: Optional[float] = None
        self.rejected: Counter = Counter()
        self.counters: Counter = Counter()

    # ------------------------------------------------------------------ link state
    def _call(self, fn):
        now = self.clock()
        if not self.backoff.may_try(now):
            self.counters["skipped_while_down"] += 1
            return None
        try:
            if self.redis is None:
                self.redis = self._factory()
                self.cluster = hasattr(self.redis, "get_nodes")
            out = fn()
        except LINK_ERRORS as e:
            self._down(now, "%s: %s" % (type(e).__name__, e))
            return None
        except REQUEST_ERRORS as e:  # NOPERM, WRONGPASS, READONLY, cluster: down, with why
            self._down(now, "%s: %s" % (type(e).__name__, e))
            return None
        if not self.up:
            self.counters["reconnects"] += 1
        self.up, self.down_since = True, None
        self.backoff.ok()
        return out

    def _down(self, now: float, why: str) -> None:
        if self.up or self.down_since is None:
            self.down_since = now
        self.up = False
        self.last_error = why
        self.counters["link_errors"] += 1
        self.backoff.failed(now)

    # ------------------------------------------------------------------ write
    def publish(self, entry: schema.RobotEntry) -> bool:
        """Write this robot's entry (TTL), its position in the GEO index and a notification.
        False when the link is down (nothing is queued: the next cycle writes fresh data)."""
        raw = entry.encode()
        lon, lat = to_lonlat(entry.pose[0], entry.pose[1])

        def write():
            pipe = self.redis.pipeline(transaction=False)
            pipe.set(self.prefix + self.robot_id, raw, px=self.ttl_ms)
            pipe.geoadd(self.geo_key, (lon, lat, self.robot_id))
            if not self.cluster:
                pipe.publish(self.channel, self.robot_id)
            out = pipe.execute()
            if self.cluster:  # redis-py refuses PUBLISH inside a cluster pipeline
                self.redis.publish(self.channel, self.robot_id)
            return out
        ok = self._call(write) is not None
        if ok:
            self.counters["published"] += 1
        return ok

    # ------------------------------------------------------------------ read
    def neighbours(self, x: float, y: float, radius: float, ros_now: float
                   ) -> Optional[List[schema.RobotEntry]]:
        """Valid entries of the other robots within `radius` metres of (x, y), nearest first;
        None when the link is down (the caller must treat its neighbours as unknown)."""
        lon, lat = to_lonlat(x, y)

        def search():
            return self.redis.geosearch(self.geo_key, longitude=lon, latitude=lat,
                                        radius=radius, unit="m", sort="ASC")
        ids = self._call(search)
        if ids is None:
            return None
        ids = [i.decode() if isinstance(i, bytes) else str(i) for i in ids]
        ids = [i for i in ids if i != self.robot_id]
        if not ids:
            return []
        raws = self._call(lambda: self.redis.mget([self.prefix + i for i in ids]))
        if raws is None:
            return None
        out, gone = [], []
        wall_now = self.wall()
        for rid, raw in zip(ids, raws):
            if raw is None:  # its TTL ran out: the robot is gone; drop it from the index
                gone.append(rid)
                continue
            try:
                e = schema.decode(raw, frame=self.frame, wall_now=wall_now, ros_now=ros_now,
                                  max_age=self.max_age, max_future=self.max_future,
                                  time_tolerance=self.time_tolerance)
            except schema.EntryError as err:
                self.rejected[err.reason] += 1
                self.last_rejected = "%s: %s" % (rid, err)
                continue
            if e.robot_id != rid:
                self.rejected["id_mismatch"] += 1
                continue
            out.append(e)
        if gone:
            self.counters["expired"] += len(gone)
            if self.prune_expired:
                self._call(lambda: self.redis.zrem(self.geo_key, *gone))
        self.counters["read"] += len(out)
        return out

    def decide_yield(self, other_id: str, proposed: str, ttl: float = 30.0
                     ) -> Optional[str]:
        """Agree through Redis on who yields between this robot and `other_id`: the first
        robot to write the pair's key (SET NX) decides, both read the same answer. None when
        the link is down (then nobody moves on the decision: the robots just wait)."""
        a, b = sorted((self.robot_id, other_id))
        key = self.prefix.replace(":robot:", ":yield:") + "%s:%s" % (a, b)

        def decide():
            self.redis.set(key, proposed.encode(), nx=True, px=int(ttl * 1000))
            return self.redis.get(key)
        got = self._call(decide)
        if got is None:
            return None
        return got.decode() if isinstance(got, bytes) else str(got)

    def remove(self) -> None:
        """Leave the fleet at once (clean shutdown), rather than after the TTL."""
        def delete():
            pipe = self.redis.pipeline(transaction=False)
            pipe.delete(self.prefix + self.robot_id)
            pipe.zrem(self.geo_key, self.robot_id)
            return pipe.execute()
        self._call(delete)

    def status(self) -> Dict[str, str]:
        kv = {"link": "up" if self.up else "down", "last_error": self.last_error}
        kv.update({k: str(v) for k, v in self.counters.items()})
        kv.update({"rejected." + k: str(v) for k, v in self.rejected.items()})
        return kv
