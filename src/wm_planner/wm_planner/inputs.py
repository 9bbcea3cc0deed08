"""What the planner node has received, and whether it is fresh enough to plan on.

The node's subscriptions (wm_planner.planner_inputs) convert each message and hand it here;
every `add_*` returns None when the input was taken, else the rejection (reason, detail) the
node counts in its diagnostics. The control cycle asks `stale` before it plans (odometry and
distance field within their timeouts) and takes the forecasts still recent enough for the
state it plans from.

Plain Python (no rclpy); Python 3.8 compatible.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Dict, List, Optional, Tuple

from wm_common.geometry import Pose2D
from wm_common.stamped_buffer import StampedBuffer

from .occupancy_forecast import PredictedOccupancy

Rejection = Optional[Tuple[str, str]]   # (reason, detail) of a refused input, or None

ABSURD_RATE = 20.0      # |v| [m/s] or |w| [rad/s] beyond this is no odometry of ours
MAX_PAYLOAD = 5000.0    # [kg]


def check_payload(mass: float) -> Optional[str]:
    """Why a payload message is refused, or None."""
    if not (math.isfinite(mass) and 0.0 <= mass <= MAX_PAYLOAD):
        return "payload %r kg is not a mass in [0, %g]" % (mass, MAX_PAYLOAD)
    return None


class InputState:
    """The latest odometry, distance field, fleet snapshot and occupancy forecasts."""

    def __init__(self):
        self.odom = StampedBuffer(maxlen=200)  # (Pose2D in odom, (v, w))
        self.last_field_t: Optional[float] = None
        self.latest_field: Optional[Tuple[Any, Any]] = None   # (Grid2D, its stamp message)
        self.fleet: Optional[Tuple[float, Any]] = None   # (receive time, FleetSnapshot)
        # topic -> (stamp the forecast is for, PredictedOccupancy)
        self.predictions: Dict[str, Tuple[float, PredictedOccupancy]] = {}

    def add_odom(self, t: float, pose: Pose2D, v: float, w: float) -> Rejection:
        if not (math.isfinite(v) and math.isfinite(w)) or abs(v) > ABSURD_RATE or \
                abs(w) > ABSURD_RATE:
            return "odom_invalid", "twist not finite or absurd"
        if not self.odom.push(t, (pose, (float(v), float(w)))):
            return "odom_out_of_order", "stamp %.3f older than %.3f" % (
                t, self.odom.latest_stamp)
        return None

    def add_field(self, t: float, field, stamp) -> Rejection:
        if self.last_field_t is not None and t < self.last_field_t:
            return "field_out_of_order", "stamp %.3f older than %.3f" % (t, self.last_field_t)
        self.last_field_t = t
        self.latest_field = (field, stamp)
        return None

    def add_prediction(self, topic: str, t: float, pred: PredictedOccupancy) -> Rejection:
        last = self.predictions.get(topic)
        if last is not None and t < last[0]:
            return "prediction_out_of_order", "%s stamp %.3f older than %.3f" % (
                topic, t, last[0])
        self.predictions[topic] = (t, pred)
        return None

    def add_fleet(self, now: float, snapshot) -> None:
        self.fleet = (now, snapshot)

    def stale(self, now: float, odom_timeout: float, field_timeout: float) -> Optional[str]:
        """The input too old to plan on at `now` ('odometry', 'distance field'), or None."""
        last = self.odom.latest_stamp
        if last is None or now - last > odom_timeout:
            return "odometry"
        if self.last_field_t is None or now - self.last_field_t > field_timeout:
            return "distance field"
        return None

    def fleet_snapshot(self, now: float, timeout: float):
        """The latest fleet snapshot unless older than `timeout` (receive time), or None."""
        if self.fleet is None or now - self.fleet[0] > timeout:
            return None
        return self.fleet[1]

    def predictions_for(self, t_state: float, max_age: float
                        ) -> Optional[List[PredictedOccupancy]]:
        """The latest forecasts not older than max_age, timed relative to the state (None:
        none)."""
        out = [dataclasses.replace(pred, time_offset=t - t_state)
               for t, pred in self.predictions.values() if t - t_state >= -max_age]
        return out or None
