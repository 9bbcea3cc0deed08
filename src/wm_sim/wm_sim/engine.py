"""The simulator's physics seam: a warehouse with N robots whose time advances only through
`step()`. The ROS node, the scenario runner and the data generator use only this interface,
so the engine behind it can change (a kinematic model for fast unit tests, MuJoCo for the
physics the world model has to learn).

Plain Python, no rclpy; Python 3.8 compatible.
"""
from __future__ import annotations

import abc
import dataclasses
from typing import Dict, List, Mapping, Optional, Tuple

import numpy as np

from wm_common.geometry import Pose2D
from .dynamics import DiffDriveParams, DiffDriveRobot
from .lidar import Lidar, LidarSpec
from .world import Box, BoxArrays, World, chassis_overlaps, robot_box


class Engine(abc.ABC):
    """N differential-drive robots in a World; true state only (sensors derive from it)."""

    world: World
    robot_ids: List[str]

    @property
    @abc.abstractmethod
    def time(self) -> float:
        """Simulated seconds since start."""

    @abc.abstractmethod
    def set_command(self, robot_id: str, v: float, w: float) -> None:
        """Body velocity command handed to the robot's wheel speed controllers."""

    @abc.abstractmethod
    def step(self, dt: float) -> None:
        """Advance simulated time by dt seconds (internally in smaller steps)."""

    @abc.abstractmethod
    def pose(self, robot_id: str) -> Pose2D:
        """True pose of base_link in map."""

    @abc.abstractmethod
    def body_velocity(self, robot_id: str) -> Tuple[float, float]:
        """True (v, w) of base_link in its own frame."""

    @abc.abstractmethod
    def wheel_angles(self, robot_id: str) -> Tuple[float, float]:
        """(left, right) wheel encoder angles [rad]."""

    @abc.abstractmethod
    def set_payload(self, robot_id: str, mass_kg: float) -> None:
        """Change the payload carried by a robot (e.g. at a pick or drop)."""

    @abc.abstractmethod
    def payload(self, robot_id: str) -> float:
        """Payload mass [kg]."""

    @abc.abstractmethod
    def scan(self, robot_id: str) -> Dict[str, np.ndarray]:
        """One organized LiDAR scan of robot_id, in its sensor frame (see Lidar.scan)."""

    @abc.abstractmethod
    def move_obstacle(self, name: str, pose: Pose2D) -> None:
        """Layout change: move a named box (shelf, pallet) to pose (map)."""

    @abc.abstractmethod
    def add_obstacle(self, box: Box) -> None:
        """Layout change: put a new box (e.g. a dropped pallet) into the world."""

    @abc.abstractmethod
    def in_contact(self, robot_id: str) -> bool:
        """True while the robot's body touches anything but the floor."""

    @abc.abstractmethod
    def reset_robot(self, robot_id: str, pose: Pose2D) -> None:
        """Put a robot at rest at pose (map), e.g. after a crash during data generation."""


class KinematicEngine(Engine):
    """Per-robot DiffDriveRobot models (lag and slip by formula) and the analytic LiDAR.

    Fast and dependency-free: for unit tests and as a fallback. Contact is geometric: the
    chassis rectangle (`chassis`, length x width, the MuJoCo robot's) against the world's
    boxes and against the other robots' chassis.
    """

    def __init__(self, world: World, spawns: Mapping[str, Pose2D],
                 lidar: Optional[LidarSpec] = None, params: Optional[DiffDriveParams] = None,
                 payloads: Optional[Mapping[str, float]] = None, seed: int = 0,
                 chassis: Tuple[float, float] = (0.7, 0.55)):
        self.world = world
        self.robot_ids = list(spawns)
        base = params or DiffDriveParams()
        payloads = dict(payloads or {})
        self._robots = {}
        for rid, pose in spawns.items():
            p = dataclasses.replace(base, payload_mass=float(payloads.get(rid, base.payload_mass)))
            self._robots[rid] = DiffDriveRobot(p, pose)
        self._cmd = {rid: (0.0, 0.0) for rid in self.robot_ids}
        self._lidars = {rid: Lidar(lidar or LidarSpec(), seed=seed + 17 * i)
                        for i, rid in enumerate(self.robot_ids)}
        self._t = 0.0
        self.chassis = (float(chassis[0]), float(chassis[1]))

    @property
    def time(self) -> float:
        return self._t

    def set_command(self, robot_id, v, w):
        self._cmd[robot_id] = (float(v), float(w))

    def step(self, dt):
        for rid, robot in self._robots.items():
            robot.step(self._cmd[rid][0], self._cmd[rid][1], dt)
        self._t += dt

    def pose(self, robot_id):
        return self._robots[robot_id].pose

    def body_velocity(self, robot_id):
        return self._robots[robot_id].body_velocity

    def wheel_angles(self, robot_id):
        return self._robots[robot_id].wheel_angles

    def set_payload(self, robot_id, mass_kg):
        robot = self._robots[robot_id]
        robot.params = dataclasses.replace(robot.params, payload_mass=float(mass_kg))

    def payload(self, robot_id):
        return self._robots[robot_id].params.payload_mass

    def scan(self, robot_id):
        others = [robot_box(self.pose(o), name=o) for o in self.robot_ids if o != robot_id]
        return self._lidars[robot_id].scan(self.world, self.pose(robot_id), others)

    def move_obstacle(self, name, pose):
        boxes = [dataclasses.replace(b, cx=pose.x, cy=pose.y, yaw=pose.yaw)
                 if b.name == name else b for b in self.world.boxes]
        if not any(b.name == name for b in self.world.boxes):
            raise KeyError("no obstacle named %r" % name)
        self._replace_world(boxes)

    def add_obstacle(self, box):
        self._replace_world(list(self.world.boxes) + [box])

    def _replace_world(self, boxes):
        w = self.world
        self.world = World(boxes, w.bounds, w.spawns, w.goals, w.name)

    def reset_robot(self, robot_id, pose):
        self._robots[robot_id].reset(pose)
        self._cmd[robot_id] = (0.0, 0.0)

    def in_contact(self, robot_id):
        p = self.pose(robot_id)
        if chassis_overlaps(self.world.arrays, p, self.chassis):
            return True
        others = [robot_box(self.pose(o), *self.chassis, name=o)
                  for o in self.robot_ids if o != robot_id]
        return bool(others) and chassis_overlaps(BoxArrays(others), p, self.chassis)
