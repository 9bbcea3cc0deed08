"""The simulator's worlds as map_server maps (YAML + PGM, wm_common.map_io): what sim_node
publishes on /map, through World.rasterize. A tool beside the stack; the planner reads the
files, never the simulator.

    python -m wm_sim.map_export export config/maps            # every shipped world
    python -m wm_sim.map_export export config/maps --world test_scene --resolution 0.05
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence, Tuple

import numpy as np

from wm_common.map_io import MapError, OccupancyMap, write_map
from wm_sim.scenario import load_world

# The worlds `export` writes when none is named (wm_sim.scenario.WORLDS).
SHIPPED_WORLDS = ("warehouse_small", "warehouse_large", "test_scene", "gap_room", "hall")

def world_map(world, resolution: float = 0.05) -> OccupancyMap:
    """The OccupancyMap of a wm_sim World: what sim_node publishes on /map
    (World.rasterize: a cell is occupied when its centre is within half a cell of a box)."""
    occ, origin = world.rasterize(resolution)
    if abs(origin.yaw) > 1e-12:
        raise MapError("world origin yaw is unsupported")
    return OccupancyMap.from_occupied(np.asarray(occ) > 0, resolution, origin.x, origin.y)


def export_world(name: str, out_dir: str, resolution: float = 0.05) -> Tuple[str, str]:
    """Write `<out_dir>/<name>.yaml` + `.pgm` for a wm_sim world (wm_sim.scenario.WORLDS)."""
    world = load_world(name)
    return write_map(os.path.join(out_dir, name + ".yaml"), world_map(world, resolution),
                     comment="wm_sim world %s at %g m, exported by wm_sim.map_export"
                     % (name, resolution))


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description="Export wm_sim worlds as map_server maps.")
    sub = ap.add_subparsers(dest="cmd")
    ex = sub.add_parser("export", help="write <out_dir>/<world>.yaml + .pgm")
    ex.add_argument("out_dir")
    ex.add_argument("--world", action="append",
                    help="world name (repeatable; default: %s)" % ", ".join(SHIPPED_WORLDS))
    ex.add_argument("--resolution", type=float, default=0.05)
    args = ap.parse_args(argv)
    if args.cmd != "export":
        ap.print_help()
        return 2
    for name in args.world or SHIPPED_WORLDS:
        for path in export_world(name, args.out_dir, args.resolution):
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
