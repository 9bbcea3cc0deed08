"""Scenario files: the map, the robots (spawn, payload, goal sequence), timed events (layout
changes, payload changes), duration and seed. One YAML file describes a whole closed-loop run;
the simulator executes the events (it owns time), the runner sends the goals.

Plain Python, no rclpy; Python 3.8 compatible.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import yaml

from wm_common.geometry import Pose2D
from .world import Box, World, room, test_scene, warehouse

WORLDS = {"warehouse_small": lambda: warehouse("small"),
          "warehouse_large": lambda: warehouse("large"),
          "test_scene": test_scene,
          # empty rooms, for scenarios that bring their own layout (static_obstacles)
          "gap_room": lambda: room(12.0, 8.0, "gap_room"),
          "hall": lambda: room(12.0, 24.0, "hall")}


def load_world(name: str) -> World:
    if name not in WORLDS:
        raise ValueError("unknown world %r (one of %s)" % (name, ", ".join(sorted(WORLDS))))
    return WORLDS[name]()


class ScenarioError(ValueError):
    pass


def _box(a, what: str, default_name: str) -> Box:
    """A box from {name, center, size, yaw, height, reflectivity} (add_obstacle's form)."""
    if not isinstance(a, dict) or "center" not in a or "size" not in a:
        raise ScenarioError("%s needs center and size" % what)
    c = _pose(a["center"], "%s.center" % what)
    sx, sy = (float(v) for v in a["size"])
    if not (sx > 0.0 and sy > 0.0 and math.isfinite(sx) and math.isfinite(sy)):
        raise ScenarioError("%s.size must be positive" % what)
    return Box(c.x, c.y, sx, sy, float(a.get("yaw", c.yaw)), float(a.get("height", 1.2)),
               str(a.get("name", default_name)), float(a.get("reflectivity", 0.3)))


def _pose(value, what: str) -> Pose2D:
    if not isinstance(value, (list, tuple)) or len(value) not in (2, 3):
        raise ScenarioError("%s must be [x, y] or [x, y, yaw], got %r" % (what, value))
    vals = [float(v) for v in value] + ([0.0] if len(value) == 2 else [])
    if not all(math.isfinite(v) for v in vals):
        raise ScenarioError("%s must be finite" % what)
    return Pose2D(*vals)


@dataclass
class RobotSpec:
    id: str
    spawn: Pose2D
    payload: float = 0.0
    goals: List[Pose2D] = field(default_factory=list)


@dataclass
class Event:
    """A timed change of the world: kind is move_obstacle, add_obstacle or set_payload."""
    t: float
    kind: str
    name: str = ""          # obstacle name, or robot id for set_payload
    pose: Optional[Pose2D] = None
    box: Optional[Box] = None
    mass: float = 0.0


@dataclass
class Scenario:
    name: str
    world: str
    robots: List[RobotSpec]
    duration: float = 120.0      # simulated seconds
    seed: int = 0
    events: List[Event] = field(default_factory=list)
    lidar_rings: int = 16
    lidar_columns: int = 512
    localization_sigma_xy: float = 0.02
    localization_sigma_yaw: float = 0.01
    localization_correlation_time: float = 1.0
    fleet_sharing: bool = True
    description: str = ""
    # boxes that belong to the facility in this scenario (a pallet row that narrows an aisle):
    # in the simulated world from the start *and* in the map the robots are given (/map),
    # unlike add_obstacle events, which the robots only learn about by seeing them
    static_boxes: List[Box] = field(default_factory=list)

    def load_world(self) -> World:
        world = load_world(self.world)
        if not self.static_boxes:
            return world
        return World(world.boxes + self.static_boxes, world.bounds, world.spawns, world.goals,
                     world.name)


def parse_scenario(doc: Dict[str, Any], default_name: str = "") -> Scenario:
    if not isinstance(doc, dict):
        raise ScenarioError("a scenario is a mapping")
    known = {"name", "world", "robots", "duration", "seed", "events", "lidar", "localization",
             "fleet_sharing", "description", "static_obstacles"}
    unknown = set(doc) - known
    if unknown:
        raise ScenarioError("unknown scenario keys: %s" % sorted(unknown))
    world = load_world(str(doc.get("world", "warehouse_small")))
    robots = []
    for i, r in enumerate(doc.get("robots") or []):
        rid = str(r.get("id", "robot%d" % (i + 1)))
        if "spawn" in r:
            spawn = _pose(r["spawn"], "%s.spawn" % rid)
        else:
            spawn = list(world.spawns.values())[i]
        goals = [_pose(g, "%s.goals[%d]" % (rid, k)) for k, g in enumerate(r.get("goals", []))]
        robots.append(RobotSpec(rid, spawn, float(r.get("payload", 0.0)), goals))
    if not robots:
        raise ScenarioError("a scenario needs at least one robot")
    if len({r.id for r in robots}) != len(robots):
        raise ScenarioError("robot ids must be unique")
    events = []
    for k, e in enumerate(doc.get("events") or []):
        t = float(e.get("t", -1))
        if not t >= 0.0:
            raise ScenarioError("events[%d].t must be >= 0" % k)
        if "move_obstacle" in e:
            world.box(str(e["move_obstacle"]))  # raises if unknown
            events.append(Event(t, "move_obstacle", str(e["move_obstacle"]),
                                pose=_pose(e["to"], "events[%d].to" % k)))
        elif "add_obstacle" in e:
            box = _box(e["add_obstacle"], "events[%d]" % k, "added_%d" % k)
            events.append(Event(t, "add_obstacle", box.name, box=box))
        elif "set_payload" in e:
            p = e["set_payload"]
            if p["robot"] not in {r.id for r in robots}:
                raise ScenarioError("events[%d]: unknown robot %r" % (k, p["robot"]))
            events.append(Event(t, "set_payload", str(p["robot"]), mass=float(p["mass"])))
        else:
            raise ScenarioError("events[%d]: expected move_obstacle, add_obstacle or set_payload"
                                % k)
    static_boxes = [_box(a, "static_obstacles[%d]" % k, "static_%d" % k)
                    for k, a in enumerate(doc.get("static_obstacles") or [])]
    lidar = doc.get("lidar") or {}
    loc = doc.get("localization") or {}
    return Scenario(
        name=str(doc.get("name", default_name)), world=str(doc.get("world", "warehouse_small")),
        robots=robots, duration=float(doc.get("duration", 120.0)), seed=int(doc.get("seed", 0)),
        events=sorted(events, key=lambda ev: ev.t), lidar_rings=int(lidar.get("rings", 16)),
        lidar_columns=int(lidar.get("columns", 512)),
        localization_sigma_xy=float(loc.get("sigma_xy", 0.02)),
        localization_sigma_yaw=float(loc.get("sigma_yaw", 0.01)),
        localization_correlation_time=float(loc.get("correlation_time", 1.0)),
        fleet_sharing=bool(doc.get("fleet_sharing", True)),
        description=str(doc.get("description", "")), static_boxes=static_boxes)


def load_scenario(path: str) -> Scenario:
    import os
    with open(path) as f:
        doc = yaml.safe_load(f)
    return parse_scenario(doc, os.path.splitext(os.path.basename(path))[0])


def default_scenario(world_name: str, n_robots: int, round_trip: bool = False,
                     duration: float = 180.0) -> Scenario:
    """The world's own spawns and goals for the first n robots (what `make demo` runs)."""
    world = load_world(world_name)
    spawns = list(world.spawns.values())[:n_robots]
    goals = list(world.goals.values())[:n_robots]
    robots = [RobotSpec("robot%d" % (i + 1), spawns[i], 0.0,
                        [goals[i]] + ([spawns[i]] if round_trip else []))
              for i in range(len(spawns))]
    return Scenario("demo_" + world_name, world_name, robots, duration=duration)
