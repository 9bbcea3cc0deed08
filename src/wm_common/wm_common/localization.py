"""map->odom from localization poses and odometry, and when it still holds (no rclpy).

wm_common.ros.localization.MapToOdom feeds it from a node's topics (or uses tf2 instead).
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

from wm_common.geometry import Pose2D, compose, inverse, wrap_angle
from wm_common.params import Param
from wm_common.stamped_buffer import StampedBuffer


def localization_params(when_lost: str) -> list:
    """The parameters of where map->odom comes from, for a node that does `when_lost` (e.g.
    "nothing shared") while the robot is not localised."""
    return [
        Param("use_tf", "auto",
              "map->odom source: 'auto' (tf2 if importable, else the localization pose "
              "topic), 'tf' or 'topic'"),
        Param("localization_max_travel", 1.0,
              "without tf2: map->odom from localization_pose holds however old it is (AMCL "
              "publishes only after moving: a parked robot hears none) until odometry has "
              "moved this far from where it was at the last pose, about four missed updates "
              "at AMCL's update_min_d 0.25 m; then not localised: %s [m]" % when_lost,
              0.05, 100.0),
        Param("localization_max_turn", 1.0,
              "without tf2: likewise once odometry has turned this far since the last pose "
              "(AMCL's update_min_a: 0.2 rad) [rad]", 0.05, 10.0),
    ]


class MapToOdomEstimate:
    """map->odom from localization poses and odometry, and whether it still holds.

    A localization pose (map->base at its stamp) paired with the odometry sample nearest that
    stamp (within `stamp_tolerance`) gives map->odom = map_base * inverse(odom_base); between
    poses odometry carries the robot: its map pose is map->odom * the latest odom->base.

    When it holds. The age of the last pose says nothing: AMCL publishes one only after a
    filter update, i.e. after the robot moved update_min_d (0.25 m) or turned update_min_a
    (0.2 rad) since the last, and slam_toolbox likewise only after motion. A parked robot
    hears no pose for hours and is as well localised as when it stopped: map->odom only
    drifts with odometry, and odometry does not drift while the wheels stand. What does say
    something is motion: once odometry has moved `max_travel` metres (default 1.0) or turned
    `max_turn` radians (default 1.0) away from where it was at the last pose's stamp, the
    localizer should have updated about four times; a pose still missing means it stopped
    (crashed, lost, starved of scans), and the estimate is stale until the next pose.
    Travel and turn are displacements (straight-line distance, heading change) from that
    place, AMCL's own trigger, not path lengths: the jitter of a parked robot's odometry (an
    EKF fusing an IMU) would add up in a path length without moving the robot. They latch at
    their largest value until the next pose: driving back does not restore the trust.
    Without fresh odometry (none within `odom_timeout` of now) nothing tells whether the
    robot moved: not usable either.

    Plain Python, no rclpy: fed with plain stamps [s] and Pose2D by `MapToOdom` or a test.
    """

    def __init__(self, max_travel: float = 1.0, max_turn: float = 1.0,
                 odom_timeout: float = 0.5, stamp_tolerance: float = 0.1, maxlen: int = 200):
        self.max_travel = float(max_travel)
        self.max_turn = float(max_turn)
        self.odom_timeout = float(odom_timeout)
        self.stamp_tolerance = float(stamp_tolerance)
        self.odom = StampedBuffer(maxlen=maxlen)   # (stamp, odom->base Pose2D)
        self.map_to_odom: Optional[Pose2D] = None
        self.pose_stamp: Optional[float] = None    # stamp of the pose it came from
        self._anchor: Optional[Pose2D] = None      # odom->base at that stamp
        self.travel = 0.0   # largest distance of odometry from the anchor since [m]
        self.turn = 0.0     # largest heading change from the anchor since [rad]

    @property
    def latest_odom(self) -> Optional[Tuple[float, Pose2D]]:
        """(stamp, odom->base) of the newest odometry, or None."""
        return self.odom.latest

    def on_odom(self, stamp: float, pose: Pose2D) -> bool:
        """One odometry sample (odom->base); False (ignored) if older than the latest."""
        if not self.odom.push(stamp, pose):
            return False
        self._moved(pose)
        return True

    def on_localization(self, stamp: float, map_base: Pose2D) -> Optional[Tuple[str, str]]:
        """One localization pose (map->base at `stamp`); None when taken, else (reason,
        detail) of the rejection: no odometry near its stamp, or older than the pose in use."""
        if self.pose_stamp is not None and stamp < self.pose_stamp:
            return ("localization_out_of_order", "stamp %.3f older than %.3f" % (
                stamp, self.pose_stamp))
        near = self.odom.nearest(stamp, self.stamp_tolerance)
        if near is None:
            return ("localization_no_odom", "no odometry within %.2f s of stamp %.3f" % (
                self.stamp_tolerance, stamp))
        self._anchor = near[1]
        self.map_to_odom = compose(map_base, inverse(self._anchor))
        self.pose_stamp = stamp
        self.travel = self.turn = 0.0
        self._moved(self.odom.latest[1])   # odometry that arrived before the (late) pose
        return None

    def _moved(self, pose: Pose2D) -> None:
        if self._anchor is None:
            return
        a = self._anchor
        self.travel = max(self.travel, math.hypot(pose.x - a.x, pose.y - a.y))
        self.turn = max(self.turn, abs(float(wrap_angle(pose.yaw - a.yaw))))

    def state(self, now: float) -> Tuple[Optional[Pose2D], str]:
        """(map->odom, "") while it holds at time `now`, else (None, why not)."""
        if self.map_to_odom is None:
            return None, "no localization pose yet"
        reason = self.odom_stale(now)
        if reason:
            return None, reason
        if self.travel > self.max_travel:
            return None, ("travelled %.2f m since the last localization pose (max %.2f m)"
                          % (self.travel, self.max_travel))
        if self.turn > self.max_turn:
            return None, ("turned %.2f rad since the last localization pose (max %.2f rad)"
                          % (self.turn, self.max_turn))
        return self.map_to_odom, ""

    def odom_stale(self, now: float) -> str:
        """Why odometry cannot be used at `now` ('' when it can)."""
        last = self.odom.latest_stamp
        if last is None:
            return "no odometry"
        if now - last > self.odom_timeout:
            return "odometry %.2f s old (max %.2f s)" % (now - last, self.odom_timeout)
        return ""
