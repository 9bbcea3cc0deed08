"""Perception node: a thin rclpy adapter around wm_perception.pipeline.

In: points (sensor_msgs/PointCloud2, SensorDataQoS; several LiDARs: point_topics, the first
paces the output and the newest cloud of each other is merged in), odom (nav_msgs/Odometry).
Out: voxel_grid (wm_msgs/VoxelGrid, odom frame), distance_field (wm_msgs/DistanceField, odom
frame, stamped with the cloud's stamp), occupancy (nav_msgs/OccupancyGrid, the bird's-eye obstacle
layer, every marker_every clouds), markers (visualization_msgs/MarkerArray), /diagnostics.

With `encoder_artifact` set, the learned scene encoder predicts the bird's-eye occupancy 0.5 s
and 1 s ahead from the voxel grid and the current twist (constant-velocity ego motion) and
publishes it as predicted_occupancy_05s / predicted_occupancy_10s (nav_msgs/OccupancyGrid,
probability in percent, a grid aligned with base_link at the cloud's stamp, header stamped
with the time the prediction is for).

Sensor->base comes from tf2 when tf2_ros is importable (robots with a full ROS 2 install), else
from the static `sensor_extrinsic` parameter; base->odom from odometry at the cloud's stamp.
Clouds already in base_frame need no transform; clouds in odom_frame (an accumulating filter's
output) are placed by the odometry at their stamp, without deskew.
Bad clouds are rejected with a throttled log line and a diagnostics counter; the node keeps
running, and the planner notices the missing distance fields and stops the robot.

Blindness (wm_perception.blindness): a LiDAR whose clouds carry (almost) no returns, or one
that falls silent while the first paces the field, gives no distance field at all (ERROR on
/diagnostics; the planner stops on its field_timeout and the collision monitor holds the
robot on its own check); azimuth sectors that went dark are walled off at blind_sector_range
(WARN), so what the sensor cannot see is never free space.
"""
from __future__ import annotations

import math
import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus
from geometry_msgs.msg import Point
from nav_msgs.msg import OccupancyGrid, Odometry
from rclpy.time import Time
from sensor_msgs.msg import PointCloud2
from visualization_msgs.msg import Marker, MarkerArray

from wm_common.geometry import Pose2D, compose, yaw_from_quaternion
from wm_common.ros import lifecycle
from wm_common.ros.convert import (grid_to_distance_field, pose2d_to_pose, pose_to_pose2d,
                                   sec_to_stamp, stamp_to_sec)
from wm_common.ros.diagnostics import DiagnosticsReporter
from wm_common.ros.params import declare_params, read_params
from wm_common.stamped_buffer import StampedBuffer
from wm_common.ros.qos import FIELD_QOS, SENSOR_QOS, STATUS_QOS
from wm_msgs.msg import DistanceField, VoxelGrid
from wm_perception.params import PERCEPTION_PARAMS
from wm_perception.pipeline import Perception, PerceptionConfig
from wm_perception.blindness import ReturnMonitor
from wm_perception.encoder import ArtifactError, cells_from_voxels, load_artifact
from wm_perception.pointcloud import CloudError, decode_points, relative_time, time_source

try:  # tf2 on robots with a full ROS 2 install; not installable from PyPI here
    import tf2_ros
    HAVE_TF2 = True
except ImportError:  # pragma: no cover - depends on the install
    HAVE_TF2 = False


IN_ODOM = "odom"   # _sensor_in_base: the cloud is in the odom frame already


class PerceptionNode(lifecycle.ManagedNode):
    def __init__(self, **kwargs):
        super().__init__("perception", **kwargs)
        declare_params(self, PERCEPTION_PARAMS)

    def on_configure(self, state):
        p = self.p = read_params(self, PERCEPTION_PARAMS)
        self.topics = [str(t) for t in p["point_topics"]]
        ext = list(p["sensor_extrinsic"])
        if not self.topics or len(set(self.topics)) != len(self.topics) or not all(
                self.topics):
            self.get_logger().error("configure failed: point_topics must be distinct names")
            return lifecycle.FAILURE
        if len(ext) != 4 * len(self.topics) or not all(math.isfinite(v) for v in ext):
            self.get_logger().error("configure failed: sensor_extrinsic must be 4 finite numbers"
                                    " per point_topics entry (%d)" % len(self.topics))
            return lifecycle.FAILURE
        if p["z_max"] <= p["z_min"] or p["max_range"] <= p["min_range"]:
            self.get_logger().error("configure failed: z_max <= z_min or max_range <= min_range")
            return lifecycle.FAILURE
        if p["blind_sector_range"] <= p["min_range"]:
            self.get_logger().error("configure failed: blind_sector_range must exceed "
                                    "min_range (the wall would be taken for the robot)")
            return lifecycle.FAILURE
        if p["use_tf"] not in ("auto", "tf", "static"):
            self.get_logger().error("configure failed: use_tf must be auto, tf or static")
            return lifecycle.FAILURE
        self.use_tf = p["use_tf"] == "tf" or (p["use_tf"] == "auto" and HAVE_TF2)
        if self.use_tf and not HAVE_TF2:
            self.get_logger().error("configure failed: use_tf=tf but tf2_ros is not importable")
            return lifecycle.FAILURE
        self.extrinsics = [tuple(ext[4 * i:4 * i + 4]) for i in range(len(self.topics))]
        self.encoder = None
        if p["encoder_artifact"]:
            try:
                self.encoder, meta = load_artifact(p["encoder_artifact"],
                                                   backend=p["encoder_backend"])
            except (ArtifactError, ImportError, OSError, ValueError, RuntimeError) as e:
                self.get_logger().error("configure failed: scene encoder %r: %s" % (
                    p["encoder_artifact"], e))
                return lifecycle.FAILURE
        self.perception = Perception(PerceptionConfig(
            resolution=p["resolution"], size_xy=p["window_size"], z_min=p["z_min"],
            z_max=p["z_max"], max_range=p["max_range"], min_range=p["min_range"],
            min_points_per_voxel=p["min_points_per_voxel"], max_distance=p["max_distance"],
            max_points=p["max_points"], size_z=p["size_z"] or None, deskew=p["deskew"],
            outlier_filter=p["outlier_filter"], outlier_neighbors=p["outlier_neighbors"],
            outlier_std_ratio=p["outlier_std_ratio"], accumulate_scans=p["accumulate_scans"],
            accumulate_decay=p["accumulate_decay"], field_subdivision=p["field_subdivision"],
            track_unknown=p["track_unknown"]))
        self.odom = StampedBuffer(maxlen=400)  # (pose in odom, body twist (vx, vy, w))
        n = len(self.topics)
        self.last_cloud_t = [None] * n
        self.pending = [None] * n  # per LiDAR: a cloud waiting for its odometry
        self.prepared = [None] * n  # per LiDAR but the first: (stamp, odom points, blind)
        self.returns = [ReturnMonitor.from_params(p) for _ in range(n)]
        self.n_clouds = 0
        self.grid_pub = self.create_lifecycle_publisher(VoxelGrid, "voxel_grid", STATUS_QOS)
        self.field_pub = self.create_lifecycle_publisher(DistanceField, "distance_field",
                                                         FIELD_QOS)
        self.marker_pub = self.create_lifecycle_publisher(MarkerArray, "markers", STATUS_QOS)
        self.occ_pub = self.create_lifecycle_publisher(OccupancyGrid, "occupancy", STATUS_QOS)
        self.pred_pubs = [] if self.encoder is None else [
            self.create_lifecycle_publisher(OccupancyGrid, name, STATUS_QOS)
            for name in ("predicted_occupancy_05s", "predicted_occupancy_10s")]
        self.diag = DiagnosticsReporter(self, "perception")
        self.diag.set_value("sensor_to_base", "tf2" if self.use_tf else "sensor_extrinsic")
        if self.use_tf:
            self.tf_buffer = tf2_ros.Buffer()
            self.tf_listener = tf2_ros.TransformListener(self.tf_buffer, self)
        self._subs = [
            self.create_subscription(PointCloud2, topic,
                                     lambda m, i=i: self._on_cloud(i, m), SENSOR_QOS)
            for i, topic in enumerate(self.topics)]
        self._subs.append(self.create_subscription(Odometry, "odom", self._on_odom,
                                                   SENSOR_QOS))
        self.get_logger().info("configured: %s, sensor->base from %s, %.2f m voxels, %.0f m "
                               "window" % (", ".join(self.topics),
                                           "tf2" if self.use_tf else "sensor_extrinsic",
                                           p["resolution"], p["window_size"]))
        return lifecycle.SUCCESS

    def on_cleanup(self, state):
        for s in self._subs:
            self.destroy_subscription(s)
        self.diag.destroy()
        for pub in [self.grid_pub, self.field_pub, self.marker_pub, self.occ_pub] + \
                self.pred_pubs:
            self.destroy_lifecycle_publisher(pub)
        return lifecycle.SUCCESS

    def on_shutdown(self, state):
        return lifecycle.SUCCESS

    # ---------------------------------------------------------------- inputs
    def _reject(self, reason: str, detail: str) -> None:
        self.diag.reject(reason, detail, what="cloud")

    def _on_odom(self, msg: Odometry) -> None:
        try:
            pose = pose_to_pose2d(msg.pose.pose)
        except ValueError as e:
            self.diag.reject("odom_invalid", str(e), what="odometry")
            return
        tw = msg.twist.twist
        if not self.odom.push(stamp_to_sec(msg.header.stamp),
                              (pose, (tw.linear.x, tw.linear.y, tw.angular.z))):
            self.diag.reject("odom_out_of_order", "stamp older than the latest",
                             what="odometry")
            return
        if self.active:
            for i, pending in enumerate(self.pending):
                if pending is not None:
                    self._process_pending(i)

    def _odom_at(self, t: float):
        """(stamp, (pose, twist)) of the odometry nearest t, or None."""
        return self.odom.nearest(t, self.p["odom_tolerance"])

    def _sensor_in_base(self, i: int, msg: PointCloud2):
        if msg.header.frame_id == self.p["base_frame"]:
            return (0.0, 0.0, 0.0, 0.0)   # already in the base frame (a filter chain's output)
        if msg.header.frame_id == self.p["odom_frame"]:
            return IN_ODOM                # an accumulating filter's output: placed by odometry
        if not self.use_tf:
            if i == 0 and msg.header.frame_id != self.p["sensor_frame"]:
                return None
            return self.extrinsics[i]
        try:
            tf = self.tf_buffer.lookup_transform(self.p["base_frame"], msg.header.frame_id,
                                                 Time())
        except Exception:  # tf2's lookup exceptions all mean 'no transform'
            return None
        tr, q = tf.transform.translation, tf.transform.rotation
        return (tr.x, tr.y, tr.z, yaw_from_quaternion(q.x, q.y, q.z, q.w))

    def _on_cloud(self, i: int, msg: PointCloud2) -> None:
        """A cloud of LiDAR i (point_topics[i]); the first LiDAR's clouds make the field."""
        if not self.active:
            return
        now = self.get_clock().now().nanoseconds * 1e-9
        t = stamp_to_sec(msg.header.stamp)
        if now - t > self.p["max_cloud_age"]:
            return self._reject("stale", "cloud is %.3f s old" % (now - t))
        if t - now > self.p["max_future"]:
            return self._reject("future_stamp", "cloud stamped %.3f s ahead" % (t - now))
        last = self.last_cloud_t[i]
        if last is not None and t <= last:
            return self._reject("out_of_order", "stamp %.3f not after %.3f" % (t, last))
        extrinsic = self._sensor_in_base(i, msg)
        if extrinsic is None:
            return self._reject("unknown_frame", "no transform from %r to %r" % (
                msg.header.frame_id, self.p["base_frame"]))
        time_field = time_scale = None
        if self.p["deskew"]:
            # each driver's own units (wm_common.point_layouts): Livox's float64 is ns
            time_field, time_scale = time_source(msg.fields, msg.point_step,
                                                 self.p["time_field"])
        try:
            cloud = decode_points(msg.fields, msg.data, msg.width, msg.height, msg.point_step,
                                  msg.row_step, msg.is_bigendian, max_points=self.p["max_points"],
                                  time_field=time_field, time_scale=time_scale)
        except CloudError as e:
            return self._reject(e.reason, str(e))
        self.last_cloud_t[i] = t
        if self._check_returns(i, cloud, t, sectors=extrinsic != IN_ODOM):
            # never "free everywhere" from a sensor that sees nothing: no field, so the
            # planner stops on its field_timeout, and the reason is on /diagnostics
            self.pending[i] = None
            if i > 0:
                self.prepared[i] = (t, None, True)
            return
        xyz, times = (cloud.xyz, None) if extrinsic == IN_ODOM else \
            self._wall_off_blind_sectors(i, cloud, extrinsic)
        if self.p["deskew"] and cloud.time is None:
            self.diag.count("not_deskewed_no_time_field")
        job = (xyz, times, extrinsic, msg.header.stamp, t)
        odom = self._odom_at(t)
        if odom is None:
            if self.odom.latest_stamp is None or self.odom.latest_stamp < t:
                # Odometry for this stamp is not here yet (it travels on its own topic):
                # hold the newest cloud until it arrives, as tf2's message filter would.
                if self.pending[i] is not None:
                    self._reject("no_odom", "superseded while waiting for odometry")
                self.pending[i] = job
                return
            return self._reject("no_odom", "no odometry within %.3f s of the cloud" %
                                self.p["odom_tolerance"])
        self._process(i, job, odom)

    def _check_returns(self, i: int, cloud, t: float, sectors: bool = True) -> bool:
        """Update LiDAR i's blindness from this cloud; True when it is blind as a whole.
        Without `sectors` (a cloud not in its sensor's frame) only the whole cloud counts."""
        mon = self.returns[i]
        blind, why = mon.update_cloud(t, cloud.xyz, cloud.n_points) if sectors else \
            mon.update(t, cloud.n_valid, cloud.n_points)
        name = self.topics[i]
        self.diag.set_value("valid_returns" if i == 0 else "valid_returns." + name,
                            "%.1f %%" % (100.0 * mon.fraction))
        if not blind:
            return False
        self.diag.count("blind_clouds")
        self.diag.set_level(DiagnosticStatus.ERROR, "LiDAR blind (%s): %s" % (name, why))
        self.get_logger().error("LiDAR blind (%s): %s; no distance field until returns come "
                                "back" % (name, why), throttle_duration_sec=2.0)
        return True

    def _wall_off_blind_sectors(self, i: int, cloud, extrinsic):
        """The cloud's points, with a wall across the azimuth sectors that went dark (in the
        sensor frame, at blind_sector_range, in the height band that counts)."""
        mon = self.returns[i]
        if not mon.blind_sectors:
            return cloud.xyz, cloud.time
        p = self.p
        wall = mon.wall(p["blind_sector_range"], p["z_min"], p["z_max"], extrinsic[2],
                        0.5 * p["resolution"]).astype(cloud.xyz.dtype)
        self.diag.count("blind_sector_clouds")
        why = "LiDAR %s partly blind, walled off at %.2f m: %s" % (
            self.topics[i], p["blind_sector_range"], mon.sectors_why())
        self.diag.set_level(DiagnosticStatus.WARN, why)
        self.get_logger().warn(why, throttle_duration_sec=2.0)
        times = None if cloud.time is None else np.concatenate(
            [cloud.time, np.zeros(len(wall), dtype=cloud.time.dtype)])
        return np.concatenate([cloud.xyz, wall]), times

    def _process(self, i: int, job, odom) -> None:
        xyz, times, extrinsic, stamp, t = job
        t0 = time.perf_counter()
        t_rel = None
        if times is not None:
            # absolute driver times (Hesai s, Livox ns) are told apart by their size
            t_rel = times - t if self.p["time_absolute"] else relative_time(times, t)
        pose, twist = odom[1]
        if extrinsic == IN_ODOM:
            # into base_link at the cloud's stamp by odometry (already motion-compensated:
            # no deskew); rays then start at the base
            c, s_ = math.cos(pose.yaw), math.sin(pose.yaw)
            dx = xyz[:, 0].astype(np.float64) - pose.x
            dy = xyz[:, 1].astype(np.float64) - pose.y
            xyz = np.column_stack([c * dx + s_ * dy, -s_ * dx + c * dy,
                                   xyz[:, 2].astype(np.float64)])
            extrinsic, t_rel = (0.0, 0.0, 0.0, 0.0), None
        prepared = self.perception.prepare(xyz, extrinsic, pose, t_rel=t_rel, twist=twist)
        if i > 0:   # merged into the next field of the first LiDAR
            self.prepared[i] = (t, prepared, False)
            return
        parts = [prepared]
        for k in range(1, len(self.topics)):
            other = self.prepared[k]
            if other is None or t - other[0] > self.p["max_cloud_age"]:
                return self._withhold(k, "silent for more than %.2f s" %
                                      self.p["max_cloud_age"])
            if other[2]:
                return self._withhold(k, "blind")
            parts.append(other[1])
        out = self.perception.build(parts, pose)
        self.n_clouds += 1
        self._publish(out, stamp)
        if self.encoder is not None and self.n_clouds % self.p["encoder_every"] == 0:
            self._predict(out, odom, t)
        ms = (time.perf_counter() - t0) * 1e3
        self.diag.count("clouds_processed")
        self.diag.set_value("last_processing_ms", "%.2f" % ms)
        self.diag.set_value("last_points_used", out.n_points_used)
        if not any(m.blind_sectors for m in self.returns):
            self.diag.set_level(DiagnosticStatus.OK, "ok")

    def _withhold(self, k: int, why: str) -> None:
        """No field while LiDAR k, merged into it, is blind or silent: its part of the
        robot's surroundings would read as free."""
        self.diag.count("fields_withheld")
        self.diag.set_level(DiagnosticStatus.ERROR, "LiDAR %s %s: no distance field" % (
            self.topics[k], why))
        self.get_logger().error("LiDAR %s %s: no distance field" % (self.topics[k], why),
                                throttle_duration_sec=2.0)

    def _process_pending(self, i: int) -> None:
        job = self.pending[i]
        odom = self._odom_at(job[4])
        if odom is not None:
            self.pending[i] = None
            self._process(i, job, odom)
        elif self.odom.latest_stamp > job[4] + self.p["odom_tolerance"]:
            self.pending[i] = None
            self._reject("no_odom", "no odometry within %.3f s of the cloud" %
                         self.p["odom_tolerance"])

    # ---------------------------------------------------------------- outputs
    def _publish(self, out, stamp) -> None:
        frame = self.p["odom_frame"]
        vg = out.voxels
        gmsg = VoxelGrid()
        gmsg.header.stamp, gmsg.header.frame_id = stamp, frame
        gmsg.resolution = float(vg.resolution)
        gmsg.origin.x, gmsg.origin.y, gmsg.origin.z = (float(v) for v in vg.origin)
        gmsg.size_x, gmsg.size_y, gmsg.size_z = (int(v) for v in vg.dims)
        gmsg.indices = np.ascontiguousarray(vg.indices, dtype=np.uint32)
        gmsg.values = np.ascontiguousarray(vg.values, dtype=np.float32)
        gmsg.value_name = "point_count"
        self.grid_pub.publish(gmsg)

        fmsg = DistanceField()
        fmsg.header.stamp, fmsg.header.frame_id = stamp, frame
        grid_to_distance_field(out.distance_field, fmsg)
        self.field_pub.publish(fmsg)

        every = self.p["marker_every"]
        if every and self.n_clouds % every == 0:
            self.marker_pub.publish(self._voxel_markers(vg, stamp, frame))
            self.occ_pub.publish(self._occupancy(out.distance_field, stamp, frame))

    def _predict(self, out, odom, t: float) -> None:
        """Predicted occupancy of the next 0.5 s steps under constant-velocity ego motion."""
        cfg = self.encoder.config
        pose, (vx, _, w) = odom[1]
        t0 = time.perf_counter()
        coords, counts = cells_from_voxels(out.voxels, (pose.x, pose.y, pose.yaw), cfg)
        dyaw = w * cfg.step_dt
        step = [vx * cfg.step_dt * math.cos(0.5 * dyaw), vx * cfg.step_dt * math.sin(0.5 * dyaw),
                dyaw, vx, w]
        probs = self.encoder.predict_occupancy(coords, counts, np.array([step] * len(
            self.pred_pubs), dtype=np.float32))
        self.diag.set_value("encoder_ms", "%.1f" % ((time.perf_counter() - t0) * 1e3))
        corner = compose(pose, Pose2D(-0.5 * cfg.nx * cfg.resolution,
                                      -0.5 * cfg.ny * cfg.resolution, 0.0))
        for k, pub in enumerate(self.pred_pubs):
            msg = OccupancyGrid()
            msg.header.stamp = sec_to_stamp(t + (k + 1) * cfg.step_dt)
            msg.header.frame_id = self.p["odom_frame"]
            msg.info.resolution = float(cfg.resolution)
            msg.info.width, msg.info.height = int(cfg.nx), int(cfg.ny)
            msg.info.origin = pose2d_to_pose(corner)
            msg.data = np.round(100.0 * probs[k]).astype(np.int8).ravel().tolist()
            pub.publish(msg)

    @staticmethod
    def _occupancy(field, stamp, frame) -> OccupancyGrid:
        """The bird's-eye obstacle layer for RViz and Nav2 costmap users (100 = obstacle,
        0 = observed free, -1 = never observed)."""
        msg = OccupancyGrid()
        msg.header.stamp, msg.header.frame_id = stamp, frame
        msg.info.resolution = float(field.resolution)
        msg.info.width, msg.info.height = int(field.width), int(field.height)
        msg.info.origin.position.x = float(field.origin_x)
        msg.info.origin.position.y = float(field.origin_y)
        msg.info.origin.orientation.w = 1.0
        occ = np.where(field.data <= 0.0, 100, 0).astype(np.int8)
        if getattr(field, "unknown", None) is not None:
            occ[field.unknown & (field.data > 0.0)] = -1   # never observed (ROS: unknown)
        msg.data = occ.ravel().tolist()
        return msg

    def _voxel_markers(self, vg, stamp, frame) -> MarkerArray:
        m = Marker()
        m.header.stamp, m.header.frame_id = stamp, frame
        m.ns, m.id, m.type, m.action = "voxels", 0, Marker.CUBE_LIST, Marker.ADD
        m.pose.orientation.w = 1.0
        m.scale.x = m.scale.y = m.scale.z = float(vg.resolution)
        m.color.r, m.color.g, m.color.b, m.color.a = 1.0, 0.5, 0.0, 0.8
        nx, ny = int(vg.dims[0]), int(vg.dims[1])
        idx = np.asarray(vg.indices, dtype=np.int64)
        ijk = np.stack([idx % nx, (idx // nx) % ny, idx // (nx * ny)], axis=1)
        centres = np.asarray(vg.origin) + (ijk + 0.5) * vg.resolution
        m.points = [Point(x=float(x), y=float(y), z=float(z)) for x, y, z in centres[:20000]]
        return MarkerArray(markers=[m])


def main(args=None):
    return lifecycle.run(PerceptionNode, args=args)


if __name__ == "__main__":
    main()
