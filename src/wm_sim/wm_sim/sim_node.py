"""Simulator node: N differential-drive robots in a warehouse, as their drivers would appear.

Per robot, under /<robot_id>/: points (sensor_msgs/PointCloud2, Ouster OS1 48-byte layout,
organized, SensorDataQoS), odom (nav_msgs/Odometry from wheel encoders: it drifts when wheels
slip), localization_pose (PoseWithCovarianceStamped in map, an AMCL stand-in), ground_truth
(nav_msgs/Odometry in map: for evaluation only, never for the robot's nodes), and cmd_vel in
(Twist, or TwistStamped by parameter). Global: /map (OccupancyGrid, transient local).

The dynamics sit behind wm_sim.dynamics.RobotDynamics, so a physics engine can replace them.
Time is the node clock; the simulation advances by the measured wall time between ticks
(clipped), so commands mean what they say in real time.
"""
from __future__ import annotations

import math
import time

import numpy as np
from geometry_msgs.msg import PoseWithCovarianceStamped, Twist, TwistStamped
from nav_msgs.msg import OccupancyGrid, Odometry
from rclpy.node import Node
from sensor_msgs.msg import PointCloud2, PointField

from wm_common.geometry import Pose2D, compose, inverse
from wm_common.point_layouts import OUSTER, pack_points
from wm_common.ros import lifecycle
from wm_common.ros.convert import pose2d_to_pose
from wm_common.ros.params import declare_params
from wm_common.ros.qos import CMD_VEL_QOS, MAP_QOS, SENSOR_QOS, STATUS_QOS
from wm_sim.dynamics import DiffDriveParams, DiffDriveRobot
from wm_sim.lidar import Lidar, LidarSpec
from wm_sim.localization import Localization
from wm_sim.odometry import WheelOdometry
from wm_sim.params import SIM_PARAMS
from wm_sim.world import robot_box, test_scene, warehouse

WORLDS = {"warehouse_small": lambda: warehouse("small"),
          "warehouse_large": lambda: warehouse("large"),
          "test_scene": test_scene}


def load_world(name: str):
    if name not in WORLDS:
        raise ValueError("unknown world %r (one of %s)" % (name, ", ".join(sorted(WORLDS))))
    return WORLDS[name]()


class SimRobot:
    """One robot's simulated body and sensors plus its ROS endpoints."""

    def __init__(self, node, rid: str, spawn: Pose2D, p: dict, seed: int):
        self.id = rid
        self.dynamics = DiffDriveRobot(DiffDriveParams(payload_mass=p["payload_mass"]), spawn)
        dp = self.dynamics.params
        # odom starts where the robot starts, at the origin of its own odom frame (REP-105)
        self.odometry = WheelOdometry(dp.wheel_radius, dp.track)
        self.odom_origin = spawn  # map->odom at start; drifts apart as odometry slips
        self.localization = Localization(rate_hz=p["localization_rate"], seed=seed + 1,
                                         correlation_time=1.0)
        self.lidar = Lidar(LidarSpec(rings=p["lidar_rings"], columns=p["lidar_columns"],
                                     max_range=p["lidar_max_range"],
                                     mount=tuple(p["lidar_mount"]),
                                     scan_rate_hz=p["lidar_rate"]), seed=seed)
        self.cmd = (0.0, 0.0)
        self.cmd_t = -1e9
        ns = "/" + rid
        cmd_type = TwistStamped if p["cmd_vel_stamped"] else Twist
        self.sub = node.create_subscription(cmd_type, ns + "/cmd_vel", self._on_cmd, CMD_VEL_QOS)
        self.points_pub = node.create_publisher(PointCloud2, ns + "/points", SENSOR_QOS)
        self.odom_pub = node.create_publisher(Odometry, ns + "/odom", SENSOR_QOS)
        self.loc_pub = node.create_publisher(PoseWithCovarianceStamped,
                                             ns + "/localization_pose", STATUS_QOS)
        self.truth_pub = node.create_publisher(Odometry, ns + "/ground_truth", SENSOR_QOS)
        self.node = node
        self.rejected = 0

    def _on_cmd(self, msg) -> None:
        tw = msg.twist if isinstance(msg, TwistStamped) else msg
        v, w = tw.linear.x, tw.angular.z
        if not (math.isfinite(v) and math.isfinite(w)):
            self.rejected += 1
            self.node.get_logger().warn("%s: non-finite cmd_vel ignored" % self.id,
                                        throttle_duration_sec=2.0)
            return
        self.cmd = (float(v), float(w))
        self.cmd_t = time.monotonic()


class SimulatorNode(Node):
    def __init__(self, **kwargs):
        super().__init__("simulator", **kwargs)
        p = self.p = declare_params(self, SIM_PARAMS)
        self.world = load_world(p["world"])
        spawns = list(self.world.spawns.values())
        flat = list(p["spawn_poses"])
        if len(flat) >= 3 * len(p["robots"]):
            spawns = [Pose2D(*flat[3 * i:3 * i + 3]) for i in range(len(p["robots"]))]
        if len(spawns) < len(p["robots"]):
            raise ValueError("world %s has %d spawn poses for %d robots" % (
                p["world"], len(spawns), len(p["robots"])))
        self.robots = [SimRobot(self, rid, spawns[i], p, p["seed"] + 17 * i)
                       for i, rid in enumerate(p["robots"])]
        self.map_pub = self.create_publisher(OccupancyGrid, "/map", MAP_QOS)
        self._publish_map()
        self.t_last = time.monotonic()
        self.next_scan = 0.0
        self.timer = self.create_timer(1.0 / p["physics_rate"], self._tick)
        self.get_logger().info("simulating %s with %d robots: %s" % (
            p["world"], len(self.robots), ", ".join(r.id for r in self.robots)))

    # ---------------------------------------------------------------- loop
    def _tick(self) -> None:
        now_mono = time.monotonic()
        dt = min(max(now_mono - self.t_last, 0.0), 0.1)
        self.t_last = now_mono
        stamp = self.get_clock().now()
        t = stamp.nanoseconds * 1e-9
        for r in self.robots:
            v, w = r.cmd if now_mono - r.cmd_t < self.p["cmd_timeout"] else (0.0, 0.0)
            r.dynamics.step(v, w, dt)
            left, right = r.dynamics.wheel_angles
            r.odometry.update(left, right, dt)
            self._publish_odom(r, stamp)
            est = r.localization.update(t, r.dynamics.pose)
            if est is not None:
                self._publish_localization(r, est, stamp)
        if now_mono >= self.next_scan:
            self.next_scan = max(self.next_scan + 1.0 / self.p["lidar_rate"], now_mono - 0.05)
            for r in self.robots:
                others = [robot_box(o.dynamics.pose, name=o.id) for o in self.robots if o is not r]
                self._publish_scan(r, r.lidar.scan(self.world, r.dynamics.pose, others), stamp)

    # ---------------------------------------------------------------- outputs
    def _publish_odom(self, r: SimRobot, stamp) -> None:
        msg = Odometry()
        msg.header.stamp = stamp.to_msg()
        msg.header.frame_id = self.p["odom_frame"]
        msg.child_frame_id = self.p["base_frame"]
        msg.pose.pose = pose2d_to_pose(r.odometry.pose)
        msg.pose.covariance = r.odometry.pose_covariance
        v, w = r.odometry.twist
        msg.twist.twist.linear.x, msg.twist.twist.angular.z = float(v), float(w)
        msg.twist.covariance = r.odometry.twist_covariance
        r.odom_pub.publish(msg)
        truth = Odometry()
        truth.header.stamp = msg.header.stamp
        truth.header.frame_id = self.p["map_frame"]
        truth.child_frame_id = self.p["base_frame"]
        truth.pose.pose = pose2d_to_pose(r.dynamics.pose)
        tv, tw = r.dynamics.body_velocity
        truth.twist.twist.linear.x, truth.twist.twist.angular.z = float(tv), float(tw)
        r.truth_pub.publish(truth)

    def _publish_localization(self, r: SimRobot, est, stamp) -> None:
        msg = PoseWithCovarianceStamped()
        msg.header.stamp = stamp.to_msg()
        msg.header.frame_id = self.p["map_frame"]
        msg.pose.pose = pose2d_to_pose(est.pose)
        msg.pose.covariance = list(est.covariance)
        r.loc_pub.publish(msg)

    def _publish_scan(self, r: SimRobot, scan: dict, stamp) -> None:
        rings, cols = scan["x"].shape
        columns = {k: np.ascontiguousarray(v).ravel() for k, v in scan.items()}
        columns["range"] = columns.pop("range_mm")
        msg = PointCloud2()
        msg.header.stamp = stamp.to_msg()
        msg.header.frame_id = self.p["lidar_frame"]
        msg.height, msg.width = rings, cols
        msg.fields = [PointField(name=f.name, offset=f.offset, datatype=f.datatype,
                                 count=f.count) for f in OUSTER.fields]
        msg.is_bigendian = False
        msg.point_step = OUSTER.point_step
        msg.row_step = OUSTER.point_step * cols
        msg.data = pack_points(OUSTER, columns)
        msg.is_dense = False
        r.points_pub.publish(msg)

    def _publish_map(self) -> None:
        res = self.p["map_resolution"]
        occ, origin = self.world.rasterize(res)
        msg = OccupancyGrid()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = self.p["map_frame"]
        msg.info.resolution = float(res)
        msg.info.height, msg.info.width = occ.shape
        msg.info.origin = pose2d_to_pose(origin)
        msg.data = np.where(np.asarray(occ) > 0, 100, 0).astype(np.int8).ravel().tolist()
        self.map_pub.publish(msg)

    def map_to_odom(self, r: SimRobot) -> Pose2D:
        """True map->odom of a robot (for evaluation): map->base * (odom->base)^-1."""
        return compose(r.dynamics.pose, inverse(r.odometry.pose))


def main(args=None):
    return lifecycle.run(SimulatorNode, args=args, threads=1)


if __name__ == "__main__":
    main()
