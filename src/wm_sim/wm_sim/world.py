"""Warehouse worlds made of boxes: obstacle geometry, signed distance, map_server export.

Every obstacle (wall, shelf, pallet, pack station, another robot) is a vertical prism: a
rectangle in the plane, optionally rotated, standing on the floor z=0 up to `height`.
That is enough for a 2D planner's map, for collision checks and for a 3D LiDAR.

Plain numpy, no rclpy; Python 3.8 / numpy 1.21 compatible.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from wm_common.geometry import Pose2D

# Cap on points x boxes per signed-distance chunk, so rasterising a big map at a fine
# resolution does not allocate gigabytes of temporaries.
_SD_CHUNK_ELEMS = 4_000_000


@dataclass(frozen=True)
class Box:
    """A rectangular prism on the floor: centre (cx, cy), full sizes (sx along the box's
    own x, sy along its y), rotated by yaw about +z, from z=0 up to height (metres)."""

    cx: float
    cy: float
    sx: float
    sy: float
    yaw: float = 0.0
    height: float = 2.0
    name: str = ""
    # LiDAR reflectivity in [0, 1]; part of the box because the surface material (painted
    # wall, metal rack, wooden pallet) is a property of the obstacle.
    reflectivity: float = 0.5

    def __post_init__(self):
        if not (self.sx > 0.0 and self.sy > 0.0 and self.height > 0.0):
            raise ValueError("box %r needs positive sizes and height" % (self.name,))

    def corners(self) -> np.ndarray:
        """(4, 2) corners in the map frame, counter-clockwise."""
        hx, hy = 0.5 * self.sx, 0.5 * self.sy
        local = np.array([[-hx, -hy], [hx, -hy], [hx, hy], [-hx, hy]])
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        return np.stack([self.cx + c * local[:, 0] - s * local[:, 1],
                         self.cy + s * local[:, 0] + c * local[:, 1]], axis=1)


def robot_box(pose: Pose2D, length: float = 0.7, width: float = 0.55, height: float = 0.5,
              name: str = "robot") -> Box:
    """Another robot as a box, so LiDARs and collision checks see robots as obstacles."""
    return Box(pose.x, pose.y, length, width, pose.yaw, height, name, reflectivity=0.6)


class BoxArrays:
    """Struct-of-arrays view of a list of boxes, the layout the vectorised code wants."""

    def __init__(self, boxes: Sequence[Box]):
        self.n = len(boxes)
        self.cx = np.array([b.cx for b in boxes], dtype=np.float64)
        self.cy = np.array([b.cy for b in boxes], dtype=np.float64)
        self.hx = np.array([0.5 * b.sx for b in boxes], dtype=np.float64)
        self.hy = np.array([0.5 * b.sy for b in boxes], dtype=np.float64)
        yaw = np.array([b.yaw for b in boxes], dtype=np.float64)
        self.yaw = yaw
        self.cos = np.cos(yaw)
        self.sin = np.sin(yaw)
        self.height = np.array([b.height for b in boxes], dtype=np.float64)
        self.reflectivity = np.array([b.reflectivity for b in boxes], dtype=np.float64)


def boxes_signed_distance(arrays: BoxArrays, xy: np.ndarray) -> np.ndarray:
    """Signed distance from (..., 2) points to the union of the boxes (negative inside).

    Exact outside every box; inside, the depth into the box containing the point. Boxes
    are treated as 2D footprints (height ignored), which is what a ground robot needs.
    """
    xy = np.asarray(xy, dtype=np.float64)
    shape = xy.shape[:-1]
    pts = xy.reshape(-1, 2)
    out = np.full(pts.shape[0], np.inf)
    if arrays.n == 0 or pts.shape[0] == 0:
        return out.reshape(shape)
    step = max(1, _SD_CHUNK_ELEMS // arrays.n)
    for i in range(0, pts.shape[0], step):  # chunks of points, not a per-point loop
        p = pts[i:i + step]
        dx = p[:, 0:1] - arrays.cx[None, :]
        dy = p[:, 1:2] - arrays.cy[None, :]
        # Point in each box's own frame (rotate by -yaw); |.| folds it into one quadrant.
        lx = np.abs(arrays.cos * dx + arrays.sin * dy) - arrays.hx
        ly = np.abs(-arrays.sin * dx + arrays.cos * dy) - arrays.hy
        outside = np.hypot(np.maximum(lx, 0.0), np.maximum(ly, 0.0))
        inside = np.minimum(np.maximum(lx, ly), 0.0)
        out[i:i + step] = np.min(outside + inside, axis=1)
    return out.reshape(shape)


def chassis_overlaps(arrays: BoxArrays, pose: Pose2D,
                     size: Tuple[float, float] = (0.7, 0.55)) -> bool:
    """Whether a rectangular chassis (length x width, centred on base_link) at `pose`
    overlaps any of the boxes (separating axis test: two rectangles are disjoint iff some
    edge normal of one separates their projections). The robot's real body, not a circle:
    the corners of the 0.7 x 0.55 m chassis reach 0.445 m from its centre."""
    a = arrays
    if a.n == 0:
        return False
    hx, hy = 0.5 * size[0], 0.5 * size[1]
    c, s = math.cos(pose.yaw), math.sin(pose.yaw)
    dx, dy = a.cx - pose.x, a.cy - pose.y
    separated = np.zeros(a.n, dtype=bool)
    for ux, uy, h_own in ((c, s, hx), (-s, c, hy)):           # the chassis's axes
        proj_box = a.hx * np.abs(ux * a.cos + uy * a.sin) + a.hy * np.abs(-ux * a.sin + uy * a.cos)
        separated |= np.abs(ux * dx + uy * dy) > h_own + proj_box
    for k in range(2):                                       # each box's own axes
        ux = a.cos if k == 0 else -a.sin
        uy = a.sin if k == 0 else a.cos
        h_box = a.hx if k == 0 else a.hy
        proj_own = hx * np.abs(ux * c + uy * s) + hy * np.abs(-ux * s + uy * c)
        separated |= np.abs(ux * dx + uy * dy) > h_box + proj_own
    return bool(np.any(~separated))


class World:
    """A set of box obstacles inside axis-aligned bounds (xmin, ymin, xmax, ymax), map frame.

    `spawns` and `goals` are name -> Pose2D (map frame) for the robots a scenario uses;
    both keep insertion order, so `list(world.spawns)` is the robot order.
    """

    def __init__(self, boxes: Iterable[Box], bounds: Tuple[float, float, float, float],
                 spawns: Optional[Dict[str, Pose2D]] = None,
                 goals: Optional[Dict[str, Pose2D]] = None, name: str = ""):
        self.boxes: List[Box] = list(boxes)
        xmin, ymin, xmax, ymax = (float(v) for v in bounds)
        if not (xmax > xmin and ymax > ymin):
            raise ValueError("world bounds must be (xmin, ymin, xmax, ymax) with max > min")
        self.bounds = (xmin, ymin, xmax, ymax)
        self.spawns: Dict[str, Pose2D] = dict(spawns or {})
        self.goals: Dict[str, Pose2D] = dict(goals or {})
        self.name = name
        self.arrays = BoxArrays(self.boxes)

    def box(self, name: str) -> Box:
        for b in self.boxes:
            if b.name == name:
                return b
        raise KeyError(name)

    def signed_distance(self, xy: np.ndarray,
                        extra_boxes: Sequence[Box] = ()) -> np.ndarray:
        """Distance from (..., 2) map-frame points to the nearest box (negative inside).

        `extra_boxes` (e.g. other robots) are added for this query only. With no boxes at
        all the distance is +inf.
        """
        arrays = self.arrays if not extra_boxes else BoxArrays(self.boxes + list(extra_boxes))
        return boxes_signed_distance(arrays, xy)

    def rasterize(self, resolution: float = 0.05) -> Tuple[np.ndarray, Pose2D]:
        """Occupancy grid of the bounds: uint8, data[iy, ix], 100 occupied / 0 free (the
        nav_msgs/OccupancyGrid values), row 0 at ymin; and the origin Pose2D of cell
        (0, 0)'s lower-left corner.

        A cell is occupied when its centre is within half a cell of a box, so walls thinner
        than a cell still come out as a closed line instead of vanishing between centres.
        """
        if not resolution > 0.0:
            raise ValueError("resolution must be positive")
        xmin, ymin, xmax, ymax = self.bounds
        w = int(math.ceil((xmax - xmin) / resolution - 1e-9))
        h = int(math.ceil((ymax - ymin) / resolution - 1e-9))
        xs = xmin + (np.arange(w) + 0.5) * resolution
        ys = ymin + (np.arange(h) + 0.5) * resolution
        gx, gy = np.meshgrid(xs, ys)
        sd = self.signed_distance(np.stack([gx, gy], axis=-1))
        occ = np.where(sd <= 0.5 * resolution, 100, 0).astype(np.uint8)
        return occ, Pose2D(xmin, ymin, 0.0)

    def write_map_server(self, path_prefix: str, resolution: float = 0.05) -> Tuple[str, str]:
        """Write `<prefix>.yaml` + `<prefix>.pgm` for nav2 map_server; returns both paths.

        PGM (binary P5, maxval 255): 0 = occupied, 254 = free; map_server reads row 0 as the
        top of the map (max y), hence the vertical flip. The YAML names the image by its
        base name so the pair can be moved together.
        """
        occ, origin = self.rasterize(resolution)
        img = np.where(occ[::-1] >= 50, 0, 254).astype(np.uint8)
        pgm_path = path_prefix + ".pgm"
        yaml_path = path_prefix + ".yaml"
        d = os.path.dirname(os.path.abspath(pgm_path))
        os.makedirs(d, exist_ok=True)
        with open(pgm_path, "wb") as f:
            f.write(b"P5\n# wm_sim world %s\n%d %d\n255\n"
                    % (self.name.encode("ascii", "replace"), img.shape[1], img.shape[0]))
            f.write(np.ascontiguousarray(img).tobytes())
        with open(yaml_path, "w") as f:
            f.write("image: %s\n" % os.path.basename(pgm_path))
            f.write("mode: trinary\n")
            f.write("resolution: %r\n" % float(resolution))
            f.write("origin: [%r, %r, %r]\n" % (float(origin.x), float(origin.y), 0.0))
            f.write("negate: 0\n")
            f.write("occupied_thresh: 0.65\n")
            f.write("free_thresh: 0.25\n")
        return yaml_path, pgm_path


def _walls(xmin: float, ymin: float, xmax: float, ymax: float, t: float = 0.2,
           height: float = 2.5) -> List[Box]:
    """Four walls of thickness t lying just inside the bounds (so the map closes)."""
    w, h = xmax - xmin, ymax - ymin
    return [
        Box(xmin + w / 2, ymin + t / 2, w, t, 0.0, height, "wall_south", 0.4),
        Box(xmin + w / 2, ymax - t / 2, w, t, 0.0, height, "wall_north", 0.4),
        Box(xmin + t / 2, ymin + h / 2, t, h - 2 * t, 0.0, height, "wall_west", 0.4),
        Box(xmax - t / 2, ymin + h / 2, t, h - 2 * t, 0.0, height, "wall_east", 0.4),
    ]


def room(width: float, height: float, name: str = "room") -> World:
    """An empty room: four walls around (0, 0)-(width, height)."""
    return World(_walls(0.0, 0.0, width, height), (0.0, 0.0, width, height), name=name)


def warehouse(name: str = "small") -> World:
    """A warehouse-like world with spawn and goal poses for up to four robots.

    'small' (20 m x 14 m, 13 boxes): outer walls; three rows of 0.8 m deep, 5 m long, 2 m
    tall shelves running along x with 2.2 m aisles between rows, each row split by cross
    aisles; a pack station near the east wall; two loaded pallets in the open staging
    areas. Each robot's straight spawn->goal line crosses shelves, so a planner must use
    the aisles, and the four routes cross each other in the middle.

    'large' (30 m x 20 m, 31 boxes): the same pattern with four rows of three shelves,
    more pallets and two pack stations (a heavier scene for LiDAR timing and stress tests).
    """
    if name == "small":
        xmin, ymin, xmax, ymax = 0.0, 0.0, 20.0, 14.0
        boxes = _walls(xmin, ymin, xmax, ymax)
        depth, length = 0.8, 5.0
        # Row centres 3.0 m apart: 3.0 - 0.8 = 2.2 m aisles between shelf faces.
        for r, cy in enumerate((4.0, 7.0, 10.0)):
            for k, cx in enumerate((4.5, 12.0)):  # shelves x 2-7 and 9.5-14.5
                boxes.append(Box(cx, cy, length, depth, 0.0, 2.0,
                                 "shelf_%d_%d" % (r, k), 0.7))
        boxes.append(Box(17.5, 7.0, 1.0, 2.0, 0.0, 1.0, "pack_station", 0.5))
        boxes.append(Box(11.0, 1.6, 1.2, 0.8, 0.0, 1.2, "pallet_0", 0.3))
        boxes.append(Box(5.0, 12.2, 1.2, 0.8, 0.3, 1.2, "pallet_1", 0.3))
        spawns = {
            "robot_0": Pose2D(1.2, 2.0, 0.0),
            "robot_1": Pose2D(18.6, 12.6, math.pi),
            "robot_2": Pose2D(1.2, 12.6, -math.pi / 2),
            "robot_3": Pose2D(18.6, 2.0, math.pi / 2),
        }
        goals = {
            "robot_0": Pose2D(16.0, 12.0, 0.0),
            "robot_1": Pose2D(3.0, 5.5, math.pi),       # aisle between rows 0 and 1
            "robot_2": Pose2D(13.0, 2.6, 0.0),
            "robot_3": Pose2D(5.0, 8.5, math.pi),       # aisle between rows 1 and 2
        }
        return World(boxes, (xmin, ymin, xmax, ymax), spawns, goals, "warehouse_small")
    if name == "large":
        xmin, ymin, xmax, ymax = 0.0, 0.0, 30.0, 20.0
        boxes = _walls(xmin, ymin, xmax, ymax)
        for r, cy in enumerate((4.5, 7.5, 10.5, 13.5)):
            for k, cx in enumerate((4.5, 12.0, 19.5)):
                boxes.append(Box(cx, cy, 5.0, 0.8, 0.0, 2.0, "shelf_%d_%d" % (r, k), 0.7))
        boxes.append(Box(26.5, 7.0, 1.0, 2.0, 0.0, 1.0, "pack_station_0", 0.5))
        boxes.append(Box(26.5, 13.0, 1.0, 2.0, 0.0, 1.0, "pack_station_1", 0.5))
        pallets = [(3.0, 1.8, 0.0), (9.0, 1.8, 0.0), (15.0, 1.8, 0.2), (21.0, 1.8, 0.0),
                   (4.0, 17.5, 0.0), (10.0, 17.5, -0.3), (16.0, 17.5, 0.0),
                   (22.0, 17.5, 0.0), (28.0, 3.0, 0.0), (28.0, 17.0, 0.0),
                   (24.5, 10.0, 0.5), (8.25, 9.0, 0.0), (15.75, 12.0, 0.0)]
        for i, (px, py, pyaw) in enumerate(pallets):
            boxes.append(Box(px, py, 1.2, 0.8, pyaw, 1.2, "pallet_%d" % i, 0.3))
        spawns = {
            "robot_0": Pose2D(1.2, 2.5, 0.0),
            "robot_1": Pose2D(28.6, 18.8, math.pi),
            "robot_2": Pose2D(1.2, 18.8, -math.pi / 2),
            "robot_3": Pose2D(28.6, 1.5, math.pi / 2),
        }
        goals = {
            "robot_0": Pose2D(25.0, 15.0, 0.0),
            "robot_1": Pose2D(3.0, 6.0, math.pi),
            "robot_2": Pose2D(19.0, 3.0, 0.0),
            "robot_3": Pose2D(6.0, 12.0, math.pi),
        }
        return World(boxes, (xmin, ymin, xmax, ymax), spawns, goals, "warehouse_large")
    raise ValueError("unknown warehouse %r (use 'small' or 'large')" % (name,))


def test_scene() -> World:
    """A 10 m x 8 m room with a 1.6 m wide, 0.6 m deep pallet block straight between the
    start (2.5, 4.0) and a goal 5 m ahead (7.5, 4.0): the system test's robot has to leave
    the straight line and go around."""
    xmin, ymin, xmax, ymax = 0.0, 0.0, 10.0, 8.0
    boxes = _walls(xmin, ymin, xmax, ymax)
    boxes.append(Box(5.0, 4.0, 0.6, 1.6, 0.0, 1.5, "block", 0.3))
    return World(boxes, (xmin, ymin, xmax, ymax),
                 {"robot_0": Pose2D(2.5, 4.0, 0.0)}, {"robot_0": Pose2D(7.5, 4.0, 0.0)},
                 "test_scene")


# pytest collects module-level callables named test_* from files it imports; this module
# is not a test file, but mark the factory anyway so a `from wm_sim.world import *` in a
# test module does not turn it into a test.
test_scene.__test__ = False  # type: ignore[attr-defined]
