"""Recent stamped samples (odometry, poses) looked up by the stamp of another message.

Plain Python, no rclpy: the nodes pair a cloud or a localization pose with the odometry
sample nearest its stamp, as tf2's buffer would.
"""
from __future__ import annotations

from collections import deque
from typing import Any, Optional, Tuple


class StampedBuffer:
    """(stamp, value) samples in stamp order, oldest dropped beyond maxlen."""

    def __init__(self, maxlen: int):
        self._items = deque(maxlen=maxlen)

    def __len__(self) -> int:
        return len(self._items)

    @property
    def latest(self) -> Optional[Tuple[float, Any]]:
        return self._items[-1] if self._items else None

    @property
    def latest_stamp(self) -> Optional[float]:
        return self._items[-1][0] if self._items else None

    def push(self, stamp: float, value: Any) -> bool:
        """Store a sample; False (and nothing stored) if it is older than the latest."""
        if self._items and stamp < self._items[-1][0]:
            return False
        self._items.append((stamp, value))
        return True

    def nearest(self, stamp: float, tolerance: float) -> Optional[Tuple[float, Any]]:
        """The sample nearest `stamp`, or None if none lies within `tolerance` seconds."""
        best = None
        for item in reversed(self._items):
            if best is None or abs(item[0] - stamp) < abs(best[0] - stamp):
                best = item
            if item[0] < stamp - tolerance:
                break
        if best is None or abs(best[0] - stamp) > tolerance:
            return None
        return best
