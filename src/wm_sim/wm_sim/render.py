"""Top-down plots of a world and the paths robots drove (for reports and CI artefacts).

Uses matplotlib's Agg backend through the object API (no pyplot global state), so it works
headless and does not change the backend of a process that imported pyplot elsewhere.

No rclpy; Python 3.8 compatible.
"""
from __future__ import annotations

import os
from typing import Mapping, Optional, Sequence, Union

import numpy as np

from .world import World

_XY = Union[Sequence[float], np.ndarray]


def _xy(p) -> np.ndarray:
    """(x, y) of a Pose2D, a tuple or an array (yaw, if any, is ignored)."""
    return np.asarray(p, dtype=np.float64).reshape(-1)[:2]


def plot_paths(world: World, paths: Mapping[str, np.ndarray],
               goals: Optional[Mapping[str, _XY]] = None,
               collisions: Optional[Union[Mapping[str, Sequence[_XY]], Sequence[_XY]]] = None,
               out_png: str = "paths.png", title: Optional[str] = None,
               dpi: int = 120) -> str:
    """Draw boxes, each robot's (N, 2) path with start (o) and goal (*) markers, and
    collision points (x); write `out_png` and return its path.

    `collisions` is either robot_id -> points or a flat list of points (where contacts
    began).
    """
    # Imported here: matplotlib costs ~0.5 s to import and the simulator node never plots.
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Polygon

    xmin, ymin, xmax, ymax = world.bounds
    w, h = xmax - xmin, ymax - ymin
    fig = Figure(figsize=(min(14.0, 1.0 + 0.6 * w), min(10.0, 1.0 + 0.6 * h)))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for b in world.boxes:
        n = b.name.lower()
        color = ("0.35" if n.startswith("wall") else "tab:brown" if "pallet" in n
                 else "tab:olive" if "pack" in n else "tab:gray")
        ax.add_patch(Polygon(b.corners(), closed=True, facecolor=color, edgecolor="black",
                             linewidth=0.5, alpha=0.8))
    colors = [c["color"] for c in matplotlib.rcParams["axes.prop_cycle"]]
    goals = goals or {}
    for i, (rid, path) in enumerate(paths.items()):
        col = colors[i % len(colors)]
        p = np.asarray(path, dtype=np.float64).reshape(-1, 2)
        if len(p):
            ax.plot(p[:, 0], p[:, 1], "-", color=col, linewidth=1.5, label=str(rid))
            ax.plot(p[0, 0], p[0, 1], "o", color=col, markersize=7, markeredgecolor="black")
        if rid in goals:
            g = _xy(goals[rid])
            ax.plot(g[0], g[1], "*", color=col, markersize=14, markeredgecolor="black")
    for rid, g in goals.items():  # goals of robots without a path yet
        if rid not in paths:
            g = _xy(g)
            ax.plot(g[0], g[1], "*", color="black", markersize=12, label="goal %s" % rid)
    if collisions is not None:
        pts = []
        if isinstance(collisions, Mapping):
            for v in collisions.values():
                pts.extend(_xy(q) for q in v)
        else:
            pts = [_xy(q) for q in collisions]
        if pts:
            c = np.array(pts)
            ax.plot(c[:, 0], c[:, 1], "x", color="red", markersize=10, markeredgewidth=2.5,
                    label="collision")
    # Legend proxies for the marker meanings, so one legend explains the whole plot.
    ax.plot([], [], "o", color="white", markeredgecolor="black", label="start")
    ax.plot([], [], "*", color="white", markeredgecolor="black", markersize=12, label="goal")
    ax.set_xlim(xmin - 0.5, xmax + 0.5)
    ax.set_ylim(ymin - 0.5, ymax + 0.5)
    ax.set_aspect("equal")
    ax.set_xlabel("x [m] (map)")
    ax.set_ylabel("y [m] (map)")
    ax.grid(True, linewidth=0.3, alpha=0.5)
    ax.set_title(title if title is not None else (world.name or "paths"))
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, borderaxespad=0.0)
    fig.tight_layout()
    d = os.path.dirname(os.path.abspath(out_png))
    os.makedirs(d, exist_ok=True)
    fig.savefig(out_png, dpi=dpi)
    return out_png
