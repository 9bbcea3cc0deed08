"""Speed-limit zones from a map layer (pack stations, doors, pedestrian crossings).

The layer is a Nav2 speed-filter mask: a map_server YAML + PGM read in `mode: raw`, so each
cell holds 0..100, plus three keys of Nav2's CostmapFilterInfo:

    speed_limit_type: percent   # percent of max_linear, or absolute [m/s]
    base: 0.0
    multiplier: 1.0             # limit = base + multiplier * cell value

A cell of 0 or unknown (white, 255) means no limit. Only navigation commands are limited
(an operator on a joystick is responsible for their own speed). Where the robot is not
localised, the slowest limit of the whole layer applies: not knowing where we are must not
mean driving fast past a door.
"""
from __future__ import annotations

import math
import os
from typing import Optional

import numpy as np
import yaml

from wm_common.map_io import MapError, read_map, write_pgm

PERCENT, ABSOLUTE = "percent", "absolute"


class SpeedZones:
    def __init__(self, limits: np.ndarray, resolution: float, origin_x: float,
                 origin_y: float):
        self.limits = limits  # (H, W) m/s, inf = no limit
        self.resolution = resolution
        self.origin_x, self.origin_y = origin_x, origin_y
        finite = limits[np.isfinite(limits)]
        self.slowest = float(finite.min()) if finite.size else math.inf

    @classmethod
    def load(cls, yaml_path: str, max_linear: float) -> "SpeedZones":
        occ = read_map(yaml_path)  # checks the map_server keys and the image
        with open(yaml_path) as f:
            doc = yaml.safe_load(f)
        if doc.get("mode") != "raw":
            raise MapError("%s: a speed mask needs mode: raw (cell values 0..100)" % yaml_path)
        kind = doc.get("speed_limit_type", PERCENT)
        if kind not in (PERCENT, ABSOLUTE):
            raise MapError("%s: speed_limit_type must be percent or absolute, got %r"
                           % (yaml_path, kind))
        base, mult = doc.get("base", 0.0), doc.get("multiplier", 1.0)
        for key, val in (("base", base), ("multiplier", mult)):
            if isinstance(val, bool) or not isinstance(val, (int, float)) \
                    or not math.isfinite(val):
                raise MapError("%s: %s must be a finite number, got %r" % (yaml_path, key, val))
        values = occ.values.astype(np.float64)
        limit = float(base) + float(mult) * values
        if kind == PERCENT:
            limit = limit / 100.0 * max_linear
        limit = np.where(values > 0, np.maximum(limit, 0.0), np.inf)
        return cls(limit, occ.resolution, occ.origin_x, occ.origin_y)

    def limit_at(self, x: Optional[float], y: Optional[float]) -> float:
        """Speed limit [m/s] at map (x, y); inf = none; None = not localised (slowest)."""
        if x is None or y is None or not (math.isfinite(x) and math.isfinite(y)):
            return self.slowest
        ix = int(math.floor((x - self.origin_x) / self.resolution))
        iy = int(math.floor((y - self.origin_y) / self.resolution))
        h, w = self.limits.shape
        if 0 <= ix < w and 0 <= iy < h:
            return float(self.limits[iy, ix])
        return math.inf


def external_limit(speed_limit: float, percentage: bool, max_linear: float) -> float:
    """A limit on navigation's |v| [m/s] (inf = none) from Nav2's SpeedLimit message: a
    percentage of `max_linear` (the gate's forward speed limit) or absolute m/s; 0 means no
    limit, as in Nav2. ValueError for NaN, infinite or negative values and percentages above
    100."""
    v = float(speed_limit)
    if not math.isfinite(v) or v < 0.0:
        raise ValueError("speed limit %r %s" % (v, "%" if percentage else "m/s"))
    if percentage and v > 100.0:
        raise ValueError("speed limit %r %% is above 100 %%" % v)
    if v == 0.0:
        return math.inf
    return v / 100.0 * max_linear if percentage else v


def write_mask(yaml_path: str, image_name: str, width_m: float, height_m: float,
               resolution: float, zones, comment: str = "") -> None:
    """Write a speed mask with rectangular zones [(x0, y0, x1, y1, percent), ...] (map
    frame, origin at 0, 0): how config/speed_zones/ was made."""
    w, h = int(round(width_m / resolution)), int(round(height_m / resolution))
    img = np.full((h, w), 255, dtype=np.uint8)  # unknown: no limit
    for x0, y0, x1, y1, pct in zones:
        c0, c1 = int(x0 / resolution), int(math.ceil(x1 / resolution))
        r0, r1 = int(y0 / resolution), int(math.ceil(y1 / resolution))
        img[h - r1:h - r0, c0:c1] = int(pct)  # image rows run from the top (largest y)
    write_pgm(os.path.join(os.path.dirname(os.path.abspath(yaml_path)), image_name), img,
              comment=comment)
    doc = {"image": image_name, "resolution": resolution, "origin": [0.0, 0.0, 0.0],
           "mode": "raw", "negate": 0, "occupied_thresh": 0.65, "free_thresh": 0.25,
           "speed_limit_type": PERCENT, "base": 0.0, "multiplier": 1.0}
    with open(yaml_path, "w") as f:
        f.write("# Speed-limit zones (Nav2 speed-filter mask, raw cell values = percent of "
                "max_linear;\n# 255/unknown = no limit). %s\n" % comment)
        yaml.safe_dump(doc, f, sort_keys=False)
