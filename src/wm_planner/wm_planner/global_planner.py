"""Global route over the static warehouse map plus what the sensors see now.

The MPPI horizon is 1 s; its navigation function only covers the perception window. A
goal three aisles away, or a blocked aisle the window cannot see past, can trap it. The
GlobalPlanner gives it a route through the whole map, which the path_follow critic
follows.

Layers, all on one planning grid in the map frame (the static map's grid, coarsened by an
integer factor to about `planning_resolution`):
  * static: the map's occupied cells (unknown too, by default), as a clearance (metres
    from each cell centre to the nearest obstacle), computed once;
  * live: what the live distance field (perception, odom frame) reads at each planning
    cell's centre, where that is closer than the static map says (by more than
    live_static_margin: a shelf seen a few centimetres off its mapped place, by the
    localization error, must not narrow the aisle); refreshed wherever the field's window
    reaches (so cells seen free again expire), kept as last seen outside it. The same
    numbers the MPC's navigation function reads from the field: where the field says a gap
    is passable, so does the route, and the other way round (one notion of the way);
  * the cost: a cell is traversable when its clearance to both layers exceeds
    robot_radius; crossing cells within robot_radius + inflation costs up to
    (1 + inflation_gain) times the distance (the ramp of navigation_function), so routes
    keep to the middle of aisles.

Search: Dijkstra (scipy.sparse.csgraph) from the goal over the 8-connected traversable
cells, with a fixed-stride CSR graph whose column indices are built once. The tree from
the goal is cached until the goal cell or the map changes, so re-planning at 1 Hz from a
moving start costs only the walk down the tree and the shortcuts. Measured with
benchmarks/bench_global_planner.py on warehouse_large (30 x 20 m, 300 x 200 planning
cells), across the map: a cold plan (edge weights + Dijkstra + walk + shortcuts) ~18 ms,
a warm one ~7 ms; a textbook heapq A* over the same graph alone 57-93 ms (3-5x the
whole cold plan), and the cold plan on the map's own 0.05 m grid ~76 ms: hence
Dijkstra on a 0.1 m grid, and no A*. The cell path is then shortened by line-of-sight
shortcuts between its corners that are traversable and cost no more (length times the
inflation multiplier) than the cells they replace, so the route is a short polyline that
still keeps to the aisle centre.

Plain numpy/scipy, no rclpy; Python 3.8 compatible.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Optional, Sequence, Tuple

import numpy as np
from scipy.ndimage import distance_transform_edt
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from wm_common.geometry import Pose2D, densify, inverse, transform_points
from wm_common.grid import Grid2D

from wm_common.map_io import OccupancyMap
from .navigation_function import traversal_multiplier

_SQRT2 = math.sqrt(2.0)
# Neighbour offsets (dy, dx) of the 8-connected graph and their step lengths in cells.
_OFFSETS = ((0, 1), (0, -1), (1, 0), (-1, 0), (1, 1), (1, -1), (-1, 1), (-1, -1))
_LENGTHS = (1.0, 1.0, 1.0, 1.0, _SQRT2, _SQRT2, _SQRT2, _SQRT2)


@dataclass
class RoutePlan:
    """The result of GlobalPlanner.plan.

    route: (N, 2) polyline in the map frame from the start to the goal (N >= 2), or
    (0, 2) when there is no route, with `reason` saying why. The route starts at the
    given start and ends at the goal, or at the nearest traversable point when the goal
    was inside an obstacle (`goal_snapped`). cell_path: the centres of the unsmoothed
    cell path (debugging, RViz).
    """

    route: np.ndarray
    reason: str = ""
    length: float = 0.0
    start_snapped: bool = False
    goal_snapped: bool = False
    plan_time_ms: float = 0.0
    cell_path: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))

    @property
    def ok(self) -> bool:
        return not self.reason and self.route.shape[0] >= 2


class GlobalPlanner:
    """Routes on the static map (map frame) with a live obstacle layer merged in.

    static_map: the map (wm_common.map_io.read_map). robot_radius: the clearance a
    route keeps from obstacles (metres). planning_resolution: the search grid's cell size,
    rounded to an integer multiple of the map's (0.1 m over a 0.05 m map).
    inflation / inflation_gain: the cost band beyond robot_radius. snap_radius: how far a
    start or goal inside an obstacle (or its inflation) is moved to a traversable cell.
    live_threshold: the live field's distance (metres) at or below which a cell centre
    counts as occupied (default: half the planning cell's diagonal, i.e. an obstacle
    surface reaches into the cell; `live`, the cells seen occupied, reports it).
    live_static_margin: the field counts where it reads this much less than the map.
    """

    # A shortcut may cost this much (relative) more than the cell path it replaces: the
    # slack absorbs the difference between the segment's sampled cost and the graph's
    # edge costs (a staircase of cells versus the straight line through them).
    _SHORTCUT_SLACK = 0.02

    def __init__(self, static_map: OccupancyMap, robot_radius: float = 0.33, *,
                 planning_resolution: float = 0.1, inflation: float = 0.8,
                 inflation_gain: float = 2.0, unknown_is_occupied: bool = True,
                 snap_radius: float = 0.5, live_threshold: Optional[float] = None,
                 live_static_margin: float = 0.15, smooth: bool = True):
        if not (robot_radius >= 0.0 and math.isfinite(robot_radius)):
            raise ValueError("robot_radius must be finite and >= 0")
        if not planning_resolution > 0.0:
            raise ValueError("planning_resolution must be positive")
        if inflation < 0.0 or inflation_gain < 0.0 or snap_radius < 0.0:
            raise ValueError("inflation, inflation_gain and snap_radius must be >= 0")
        self.map = static_map
        self.robot_radius = float(robot_radius)
        self.inflation = float(inflation)
        self.inflation_gain = float(inflation_gain)
        self.snap_radius = float(snap_radius)
        self.smooth = bool(smooth)
        f = max(1, int(round(planning_resolution / static_map.resolution)))
        self.factor = f
        self.resolution = static_map.resolution * f
        self.origin_x = static_map.origin_x
        self.origin_y = static_map.origin_y
        self.height = -(-static_map.height // f)
        self.width = -(-static_map.width // f)
        self.live_threshold = (0.5 * _SQRT2 * self.resolution if live_threshold is None
                               else float(live_threshold))
        self.live_static_margin = float(live_static_margin)

        self.static_clearance = self._static_clearance(unknown_is_occupied)
        # what the field read at each cell, floored to LIVE_QUANTUM (inf: nothing closer
        # than the map there)
        self._live = np.full((self.height, self.width), np.inf)
        self._has_live = False
        # cells a reroute recovery declared impassable for the current goal (forbid)
        self._forbidden = np.zeros((self.height, self.width), dtype=bool)
        self._static_traversable = self.static_clearance > self.robot_radius
        self.version = 0          # bumped whenever the live layer changes
        self._built_version = -1  # version the cost layers / graph were built for
        self._tree_key: Optional[Tuple[int, int]] = None
        self._tree = None
        self._clearance = self.static_clearance
        self._traversable = self._static_traversable
        self._mult = np.ones_like(self.static_clearance)
        n = self.height * self.width
        iy, ix = np.divmod(np.arange(n), self.width)
        nbr = np.empty((n, 8), dtype=np.int32)
        for k, (dy, dx) in enumerate(_OFFSETS):
            nbr[:, k] = (np.clip(iy + dy, 0, self.height - 1) * self.width
                         + np.clip(ix + dx, 0, self.width - 1))
        self._indices = nbr.ravel()
        self._indptr = np.arange(n + 1, dtype=np.int64) * 8
        self._weights = np.empty(n * 8)

    # -- layers --------------------------------------------------------------------------

    def _static_clearance(self, unknown_is_occupied: bool) -> np.ndarray:
        """(H, W) metres from each planning cell to the nearest static obstacle: the
        fine-grid distance (cell centre to the nearest blocked cell's boundary, half a
        cell taken off the centre-to-centre EDT), minimum over the cells of each block.
        Outside the map is blocked."""
        m, f = self.map, self.factor
        blocked = m.occupied | (m.unknown if unknown_is_occupied else False)
        hp, wp = self.height * f, self.width * f
        pad = np.ones((hp + 2, wp + 2), dtype=bool)  # a blocked border outside the map
        pad[1:1 + m.height, 1:1 + m.width] = blocked
        fine = distance_transform_edt(~pad)[1:-1, 1:-1] * m.resolution - 0.5 * m.resolution
        fine[pad[1:-1, 1:-1]] = -m.resolution
        return fine.reshape(self.height, f, self.width, f).min(axis=(1, 3))

    def _rebuild(self) -> None:
        """Merged clearance, traversability and edge weights for the current version."""
        if self._built_version == self.version:
            return
        clear = self.static_clearance
        if self._has_live:
            clear = np.minimum(clear, self._live)
        if self._forbidden.any():
            clear = np.where(self._forbidden, -self.resolution, clear)
        self._clearance = clear
        free = clear > self.robot_radius
        self._traversable = free
        mult = traversal_multiplier(clear, self.robot_radius, self.inflation,
                                    self.inflation_gain)
        self._mult = mult
        h, w = free.shape
        fp = np.zeros((h + 2, w + 2), dtype=bool)
        fp[1:-1, 1:-1] = free
        mp = np.ones((h + 2, w + 2))
        mp[1:-1, 1:-1] = mult
        o3 = self._weights.reshape(h, w, 8)
        for k, (dy, dx) in enumerate(_OFFSETS):  # 8 whole-grid operations
            ok = free & fp[1 + dy:1 + dy + h, 1 + dx:1 + dx + w]
            if dy and dx:  # no corner cutting between two blocked cells
                ok &= fp[1:1 + h, 1 + dx:1 + dx + w] & fp[1 + dy:1 + dy + h, 1:1 + w]
            wk = mult + mp[1 + dy:1 + dy + h, 1 + dx:1 + dx + w]
            wk *= 0.5 * self.resolution * _LENGTHS[k]
            wk[~ok] = np.inf
            o3[:, :, k] = wk
        self._built_version = self.version
        self._tree_key = None

    @property
    def live(self) -> np.ndarray:
        """(H, W) bool: cells the live layer holds occupied (the field read an obstacle
        surface within live_threshold of the centre, where the map has none)."""
        return self._live <= self.live_threshold

    def update_live(self, esdf: Grid2D, map_to_odom: Pose2D) -> bool:
        """Merge a live distance field (a Grid2D in the odom frame, metres) into the live
        layer. map_to_odom is the pose of the odom frame in the map frame (the tf
        map -> odom). Within the field's window every planning cell takes what the field
        reads at its centre where that is below the static clearance less
        live_static_margin (and below robot_radius + inflation, beyond which all clearances
        cost the same), and nothing (the map's value) elsewhere; outside the window
        nothing changes; NaN reads leave a cell as it was. Returns whether the live layer
        changed (values are floored to LIVE_QUANTUM, so noise of a few millimetres does
        not count)."""
        corners_o = np.array([[esdf.origin_x, esdf.origin_y],
                              [esdf.origin_x + esdf.width * esdf.resolution, esdf.origin_y],
                              [esdf.origin_x, esdf.origin_y + esdf.height * esdf.resolution],
                              [esdf.origin_x + esdf.width * esdf.resolution,
                               esdf.origin_y + esdf.height * esdf.resolution]])
        corners = transform_points(map_to_odom, corners_o)
        r = self.resolution
        ix0 = max(int(math.floor((corners[:, 0].min() - self.origin_x) / r)), 0)
        ix1 = min(int(math.ceil((corners[:, 0].max() - self.origin_x) / r)), self.width)
        iy0 = max(int(math.floor((corners[:, 1].min() - self.origin_y) / r)), 0)
        iy1 = min(int(math.ceil((corners[:, 1].max() - self.origin_y) / r)), self.height)
        if ix1 <= ix0 or iy1 <= iy0:
            return False
        xs = self.origin_x + (np.arange(ix0, ix1) + 0.5) * r
        ys = self.origin_y + (np.arange(iy0, iy1) + 0.5) * r
        pts = np.stack(np.meshgrid(xs, ys), axis=-1)
        pts_o = transform_points(inverse(map_to_odom), pts)
        _, _, inside = esdf.world_to_cell(pts_o)
        d = esdf.sample(pts_o)
        static = self.static_clearance[iy0:iy1, ix0:ix1]
        with np.errstate(invalid="ignore"):  # NaN: no information, the cell keeps its state
            seen = inside & np.isfinite(d)
            # beyond robot_radius + inflation every clearance costs the same: no news
            closer = seen & (d < static - self.live_static_margin) \
                & (d < self.robot_radius + self.inflation) & (static > 0.0)
        q = self.LIVE_QUANTUM
        old = self._live[iy0:iy1, ix0:ix1]
        new = np.where(seen, np.where(closer, np.floor(np.where(closer, d, 0.0) / q) * q,
                                      np.inf), old)
        if np.array_equal(new, old):
            return False
        self._live[iy0:iy1, ix0:ix1] = new
        self._has_live = bool(np.isfinite(self._live).any())
        self.version += 1
        return True

    # The live layer's values are floored to this [m]: a field that changes by less (sensor
    # noise) leaves the layer, and the cached search tree, as they are.
    LIVE_QUANTUM = 0.02

    def reset_cache(self) -> None:
        """Drop the cached search tree and cost layers (the next plan is a cold one)."""
        self._built_version = -1
        self._tree_key = None

    def clear_live(self) -> None:
        """Forget every live obstacle (a clear-and-replan recovery, a relocalisation)."""
        if self._has_live:
            self._live[:] = np.inf
            self._has_live = False
            self.version += 1

    def forbid(self, xy: Sequence[float], radius: float) -> None:
        """Declare the cells within `radius` of the map point `xy` impassable (a narrow
        passage the robot could not get through: the reroute recovery) until
        `clear_forbidden`."""
        xs = self.origin_x + (np.arange(self.width) + 0.5) * self.resolution
        ys = self.origin_y + (np.arange(self.height) + 0.5) * self.resolution
        near = np.hypot(xs[None, :] - xy[0], ys[:, None] - xy[1]) <= radius
        if (near & ~self._forbidden).any():
            self._forbidden |= near
            self.version += 1

    def forbidden_mask(self) -> np.ndarray:
        return self._forbidden.copy()

    def restore_forbidden(self, mask: np.ndarray) -> None:
        if not np.array_equal(mask, self._forbidden):
            self._forbidden = mask.copy()
            self.version += 1

    def clear_forbidden(self) -> None:
        if self._forbidden.any():
            self._forbidden[:] = False
            self.version += 1

    # -- queries -------------------------------------------------------------------------

    def _cells(self, xy: np.ndarray):
        xy = np.asarray(xy, dtype=np.float64)
        ix = np.floor((xy[..., 0] - self.origin_x) / self.resolution).astype(np.int64)
        iy = np.floor((xy[..., 1] - self.origin_y) / self.resolution).astype(np.int64)
        inside = (ix >= 0) & (ix < self.width) & (iy >= 0) & (iy < self.height)
        return np.clip(ix, 0, self.width - 1), np.clip(iy, 0, self.height - 1), inside

    def clearance(self, xy: np.ndarray) -> np.ndarray:
        """Clearance (metres, static and live) of the planning cells holding (..., 2) map
        points; -resolution outside the map."""
        self._rebuild()
        ix, iy, inside = self._cells(xy)
        return np.where(inside, self._clearance[iy, ix], -self.resolution)

    def traversable(self, xy: np.ndarray) -> np.ndarray:
        """Whether the planning cells holding (..., 2) map points are traversable now."""
        self._rebuild()
        ix, iy, inside = self._cells(xy)
        return inside & self._traversable[iy, ix]

    def cell_center(self, xy) -> np.ndarray:
        ix, iy, _ = self._cells(np.asarray(xy))
        return np.stack([self.origin_x + (ix + 0.5) * self.resolution,
                         self.origin_y + (iy + 0.5) * self.resolution], axis=-1)

    def _snap(self, xy: Sequence[float], ok: np.ndarray) -> Optional[int]:
        """Flat index of the nearest cell with ok[] within snap_radius of xy, or None."""
        r = self.resolution
        ix, iy, _ = self._cells(np.asarray(xy, dtype=np.float64))
        n = int(math.ceil(self.snap_radius / r)) + 1
        x0, x1 = max(int(ix) - n, 0), min(int(ix) + n + 1, self.width)
        y0, y1 = max(int(iy) - n, 0), min(int(iy) + n + 1, self.height)
        if x1 <= x0 or y1 <= y0:
            return None
        xs = self.origin_x + (np.arange(x0, x1) + 0.5) * r
        ys = self.origin_y + (np.arange(y0, y1) + 0.5) * r
        d = np.hypot(xs[None, :] - xy[0], ys[:, None] - xy[1])
        d[~ok[y0:y1, x0:x1] | (d > self.snap_radius)] = np.inf
        k = int(np.argmin(d))
        if not np.isfinite(d.flat[k]):
            return None
        ky, kx = divmod(k, x1 - x0)
        return (y0 + ky) * self.width + (x0 + kx)

    def _center_of(self, idx) -> np.ndarray:
        iy, ix = np.divmod(np.asarray(idx), self.width)
        return np.stack([self.origin_x + (ix + 0.5) * self.resolution,
                         self.origin_y + (iy + 0.5) * self.resolution], axis=-1)

    def _tree_from(self, goal_idx: int):
        key = (goal_idx, self.version)
        if self._tree_key != key:
            n = self.height * self.width
            graph = csr_matrix((self._weights, self._indices, self._indptr), shape=(n, n))
            dist, pred = dijkstra(graph, directed=True, indices=goal_idx,
                                  return_predecessors=True)
            self._tree = (dist, pred)
            self._tree_key = key
        return self._tree

    def plan(self, start_xy: Sequence[float], goal_xy: Sequence[float]) -> RoutePlan:
        """Route (map frame) from start_xy to goal_xy; RoutePlan.reason says why not."""
        t0 = time.perf_counter()
        start = np.asarray(start_xy, dtype=np.float64)[:2]
        goal = np.asarray(goal_xy, dtype=np.float64)[:2]

        def fail(reason: str) -> RoutePlan:
            return RoutePlan(np.zeros((0, 2)), reason,
                             plan_time_ms=(time.perf_counter() - t0) * 1e3)

        if not (np.all(np.isfinite(start)) and np.all(np.isfinite(goal))):
            return fail("start or goal is not finite")
        for what, p in (("start", start), ("goal", goal)):
            if not bool(self._cells(p)[2]):
                return fail("%s (%.2f, %.2f) is outside the map" % (what, p[0], p[1]))
        self._rebuild()
        w = self.width
        free = self._traversable
        gix, giy, _ = self._cells(goal)
        goal_idx = int(giy) * w + int(gix)
        goal_snapped = not bool(free.flat[goal_idx])
        if goal_snapped:
            snapped = self._snap(goal, free)
            if snapped is None:
                return fail("goal (%.2f, %.2f) is inside an obstacle or its inflation "
                            "(no free cell within %.2f m)" % (goal[0], goal[1],
                                                              self.snap_radius))
            goal_idx = snapped
        dist, pred = self._tree_from(goal_idx)
        reach = np.isfinite(dist).reshape(self.height, w)
        six, siy, _ = self._cells(start)
        start_idx = int(siy) * w + int(six)
        start_snapped = not bool(reach.flat[start_idx])
        if start_snapped:
            snapped = self._snap(start, reach)
            if snapped is None:
                if free.flat[start_idx]:
                    return fail("no route: start (%.2f, %.2f) and goal (%.2f, %.2f) are not "
                                "connected" % (start[0], start[1], goal[0], goal[1]))
                return fail("start (%.2f, %.2f) is inside an obstacle or its inflation (no "
                            "free cell connected to the goal within %.2f m)"
                            % (start[0], start[1], self.snap_radius))
            start_idx = snapped
        # Walk the shortest-path tree from the start down to the goal.
        cells = [start_idx]
        guard = self.height * w
        while cells[-1] != goal_idx and len(cells) <= guard:
            nxt = int(pred[cells[-1]])
            if nxt < 0:
                return fail("no route (start and goal are not connected)")
            cells.append(nxt)
        cells = np.array(cells)
        centers = self._center_of(cells)
        end = centers[-1] if goal_snapped else goal
        ctg = dist[cells]  # the route's cost-to-go at each cell
        if start_snapped:
            pts = np.vstack([start, centers[:-1], end[None]])
            ctg = np.concatenate([ctg[:1], ctg])
            fixed = 1  # the leg out of the obstacle stays as it is
        else:
            pts = np.vstack([start, centers[1:-1], end[None]])
            fixed = 0
        route = self._shortcut(pts, ctg, fixed) if self.smooth else pts
        seg = np.hypot(*np.diff(route, axis=0).T)
        return RoutePlan(route, "", float(seg.sum()), start_snapped, goal_snapped,
                         (time.perf_counter() - t0) * 1e3, centers)

    def _shortcut(self, pts: np.ndarray, ctg: np.ndarray, fixed: int) -> np.ndarray:
        """Replace runs of the cell path by straight segments that are traversable and
        cost no more than the run they replace (the same cost: length times the inflation
        multiplier), so a shortcut may straighten a staircase in open space but never
        pulls the route toward a shelf. ctg[k]: the cell path's cost-to-go at pts[k]."""
        n = pts.shape[0]
        if n <= 2 + fixed:
            return pts
        # Candidate vertices: the corners of the cell path (direction changes), the ends.
        d = np.diff(pts, axis=0)
        ang = np.arctan2(d[:, 1], d[:, 0])
        turn = np.abs(np.diff(ang)) > 1e-6
        corner = np.zeros(n, dtype=bool)
        corner[[0, fixed, n - 1]] = True
        corner[1:-1] |= turn
        cand = np.flatnonzero(corner)
        step = 0.25 * self.resolution
        out = [pts[i] for i in range(fixed + 1)]
        i = fixed
        while i < n - 1:
            js = cand[cand > i]
            lens = np.hypot(pts[js, 0] - pts[i, 0], pts[js, 1] - pts[i, 1])
            m = max(2, int(math.ceil(lens.max() / step)) + 1)
            t = np.linspace(0.0, 1.0, m)
            # (J, m) samples along every candidate segment; short ones oversampled.
            seg = pts[i] + (pts[js] - pts[i])[:, None, :] * t[None, :, None]
            ix, iy, inside = self._cells(seg)
            mult = self._mult[iy, ix]
            cost = (mult.sum(axis=1) - 0.5 * (mult[:, 0] + mult[:, -1])) * lens / (m - 1)
            ok = ((inside & self._traversable[iy, ix]).all(axis=1)
                  & (cost <= (ctg[i] - ctg[js]) * (1.0 + self._SHORTCUT_SLACK) + 1e-9))
            # Between consecutive corners the cell path is straight: the fallback.
            j = int(js[np.flatnonzero(ok)[-1]]) if ok.any() else int(js[0])
            out.append(pts[j])
            i = j
        return np.array(out)

    def path_cost(self, route: np.ndarray, from_xy: Optional[Sequence[float]] = None
                  ) -> float:
        """The cost of driving `route` (map frame) in the planner's own metric: length
        times the inflation multiplier of the cells it crosses (what `plan` minimises), +inf
        where a cell is not traversable now. With from_xy (the robot), from its nearest
        point on the route, plus the straight leg from the robot to that point."""
        route = np.asarray(route, dtype=np.float64).reshape(-1, 2)
        if route.shape[0] < 2:
            return math.inf
        step = 0.5 * self.resolution
        pts = densify(route, step)
        lead = 0.0
        if from_xy is not None:
            k = int(np.argmin(np.hypot(pts[:, 0] - from_xy[0], pts[:, 1] - from_xy[1])))
            lead = float(np.hypot(pts[k, 0] - from_xy[0], pts[k, 1] - from_xy[1]))
            pts = pts[k:]
        if pts.shape[0] < 2:
            return lead
        self._rebuild()
        ix, iy, inside = self._cells(pts)
        if not bool((inside & self._traversable[iy, ix]).all()):
            return math.inf
        mult = self._mult[iy, ix]
        seg = np.hypot(*np.diff(pts, axis=0).T)
        return lead + float(np.sum(seg * 0.5 * (mult[1:] + mult[:-1])))

    def is_blocked(self, route: np.ndarray, from_xy: Optional[Sequence[float]] = None
                   ) -> bool:
        """Whether the live layer now blocks `route` (map frame): some point of it lies in
        a cell that the static map leaves traversable but static + live do not. With
        from_xy (the robot, map frame) only the part ahead of its nearest point counts."""
        route = np.asarray(route, dtype=np.float64).reshape(-1, 2)
        if route.shape[0] == 0 or not self._has_live:
            return False
        pts = densify(route, 0.5 * self.resolution)
        if from_xy is not None:
            k = int(np.argmin(np.hypot(pts[:, 0] - from_xy[0], pts[:, 1] - from_xy[1])))
            pts = pts[k:]
        self._rebuild()
        ix, iy, inside = self._cells(pts)
        # cells a reroute forbade are no news: the route was planned knowing them
        hit = (inside & self._static_traversable[iy, ix] & ~self._traversable[iy, ix]
               & ~self._forbidden[iy, ix])
        return bool(hit.any())


class ReplanPolicy:
    """When to plan a new route: none yet, the goal moved, the route is blocked, or
    `replan_period` seconds passed since the last attempt (successful or not).

        reason = policy.due(now, goal_xy, blocked=planner.is_blocked(route, robot_xy))
        if reason:
            result = planner.plan(robot_xy, goal_xy); policy.planned(now, goal_xy)
    """

    def __init__(self, replan_period: float = 1.0, goal_tolerance: float = 0.05):
        if not replan_period > 0.0 or goal_tolerance < 0.0:
            raise ValueError("replan_period > 0 and goal_tolerance >= 0 required")
        self.replan_period = float(replan_period)
        self.goal_tolerance = float(goal_tolerance)
        self._t: Optional[float] = None
        self._goal: Optional[Tuple[float, float]] = None

    def reset(self) -> None:
        self._t = None
        self._goal = None

    def due(self, now: float, goal_xy: Sequence[float], blocked: bool = False
            ) -> Optional[str]:
        """'no route', 'goal changed', 'blocked', 'period' or None (no replan needed)."""
        if self._t is None or self._goal is None:
            return "no route"
        if math.hypot(goal_xy[0] - self._goal[0], goal_xy[1] - self._goal[1]) \
                > self.goal_tolerance:
            return "goal changed"
        if blocked:
            return "blocked"
        if now - self._t >= self.replan_period or now < self._t:
            return "period"
        return None

    def planned(self, now: float, goal_xy: Sequence[float]) -> None:
        """Record a planning attempt at `now` for `goal_xy`."""
        self._t = float(now)
        self._goal = (float(goal_xy[0]), float(goal_xy[1]))
