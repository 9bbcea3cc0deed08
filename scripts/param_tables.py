"""Print (or, with --write, put into README.md) the parameter tables of every node, generated
from the declarations the nodes use, so the README cannot drift from the code; --write also
writes config/defaults/all_parameters.yaml (every parameter at its documented default).

    scripts/with_env python scripts/param_tables.py --write
"""
from __future__ import annotations

import sys
from pathlib import Path

from wm_common.params import markdown_table
from wm_perception.params import PERCEPTION_PARAMS
from wm_planner.params import PLANNER_PARAMS
from wm_safety.params import SAFETY_PARAMS
from wm_fleet.params import FLEET_PARAMS
from wm_sim.params import SIM_PARAMS
from wm_bringup.params import MANAGER_PARAMS
from wm_monitor.params import MONITOR_PARAMS

README = Path(__file__).resolve().parent.parent / "README.md"
BEGIN, END = "<!-- params:begin -->", "<!-- params:end -->"
NODES = [("perception (wm_perception)", PERCEPTION_PARAMS),
         ("planner (wm_planner)", PLANNER_PARAMS),
         ("collision_monitor (wm_safety)", SAFETY_PARAMS),
         ("fleet_client (wm_fleet)", FLEET_PARAMS), ("simulator (wm_sim)", SIM_PARAMS),
         ("lifecycle_manager (wm_bringup)", MANAGER_PARAMS),
         ("monitor (wm_monitor)", MONITOR_PARAMS)]


def tables() -> str:
    parts = ["Every node also has `autostart` (default `true`: configure and activate without a "
             "lifecycle manager) and rclpy's `use_sim_time`."]
    for title, specs in NODES:
        parts.append("#### %s\n\n%s" % (title, markdown_table(specs)))
    return "\n\n".join(parts)


DEFAULTS = README.parent / "config" / "defaults" / "all_parameters.yaml"
EXECUTABLES = ["perception", "planner", "collision_monitor", "fleet_client", "simulator",
               "lifecycle_manager", "monitor"]


def defaults_yaml() -> str:
    """Every declared parameter of every node with its default, range and description: a
    params file that sets each parameter to its default (generated; do not edit)."""
    import json

    lines = ["# Every parameter of every wm node at its default, with its range and meaning.",
             "# Generated from the declarations by scripts/param_tables.py --write: do not edit;",
             "# copy what you change into your own params file (config/robot.yaml is the one",
             "# robot.launch.py uses).", ""]
    for exe, (title, specs) in zip(EXECUTABLES, NODES):
        lines += ["/**/%s:  # %s" % (exe, title), "  ros__parameters:"]
        for p in specs:
            rng = ""
            if p.min is not None or p.max is not None:
                rng = " [%s, %s]" % ("" if p.min is None else p.min,
                                     "" if p.max is None else p.max)
            lines.append("    # %s%s" % (p.description, rng))
            default = list(p.default) if isinstance(p.default, tuple) else p.default
            lines.append("    %s: %s" % (p.name, json.dumps(default)))
        lines.append("")
    return "\n".join(lines)


def section() -> str:
    return "%s\n%s\n%s" % (BEGIN, tables(), END)


def main(argv) -> int:
    if "--write" in argv:
        text = README.read_text()
        a, b = text.index(BEGIN), text.index(END) + len(END)
        README.write_text(text[:a] + section() + text[b:])
        DEFAULTS.parent.mkdir(exist_ok=True)
        DEFAULTS.write_text(defaults_yaml())
    else:
        print(section())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
