"""Publish recorded clouds (PCD/PLY or a rosbag2 bag's PointCloud2 messages) on `points` as
sensor_msgs/PointCloud2 in a chosen driver layout, with SensorDataQoS, at a fixed rate,
restamped with the current time, so perception can be tried on a user's own recordings.

    ros2 run wm_perception replay --ros-args -p path:=run_0001/ -p topic:=/ouster/points \\
        -p layout:=ouster -p frame_id:=lidar_link -p rate:=10.0 -p loop:=true
"""
from __future__ import annotations

import rclpy
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import PointCloud2, PointField

from wm_common.point_layouts import LAYOUTS
from wm_perception.tools.replay import iter_clouds, pack_for_layout


def make_message(rec, layout, stamp_ns: int, frame_id: str) -> PointCloud2:
    """A one-row PointCloud2 of a RecordedCloud in `layout`, stamped stamp_ns."""
    data, stamp_ns, fields = pack_for_layout(rec.xyz, rec.t_rel, layout, stamp_ns)
    msg = PointCloud2()
    msg.header.stamp.sec = int(stamp_ns // 1_000_000_000)
    msg.header.stamp.nanosec = int(stamp_ns % 1_000_000_000)
    msg.header.frame_id = frame_id
    msg.height, msg.width = 1, int(rec.xyz.shape[0])
    msg.fields = [PointField(name=f.name, offset=f.offset, datatype=f.datatype, count=f.count)
                  for f in fields]
    msg.is_bigendian = False
    msg.point_step = layout.point_step
    msg.row_step = layout.point_step * msg.width
    msg.data = data
    msg.is_dense = True
    return msg


class ReplayNode(Node):
    def __init__(self, **kwargs):
        super().__init__("replay", **kwargs)
        self.path = self.declare_parameter("path", "").value
        self.topic = self.declare_parameter("topic", "").value or None   # bag topic filter
        layout = self.declare_parameter("layout", "ouster").value
        self.frame_id = self.declare_parameter("frame_id", "lidar_link").value
        rate = float(self.declare_parameter("rate", 10.0).value)
        self.loop = bool(self.declare_parameter("loop", True).value)
        if not self.path:
            raise ValueError("parameter 'path' (PCD/PLY file or rosbag2 bag) is required")
        if layout not in LAYOUTS:
            raise ValueError("layout must be one of %s" % sorted(LAYOUTS))
        if not rate > 0.0:
            raise ValueError("rate must be positive")
        self.layout = LAYOUTS[layout]
        self.pub = self.create_publisher(PointCloud2, "points", qos_profile_sensor_data)
        self._it = iter_clouds(self.path, self.topic)
        self.n_published = 0
        self.timer = self.create_timer(1.0 / rate, self._tick)
        self.get_logger().info("replaying %s as %s clouds in %r at %.1f Hz" % (
            self.path, layout, self.frame_id, rate))

    def _next(self):
        try:
            return next(self._it)
        except StopIteration:
            if not self.loop or self.n_published == 0:
                return None
            self._it = iter_clouds(self.path, self.topic)
            return next(self._it, None)

    def _tick(self) -> None:
        rec = self._next()
        if rec is None:
            self.get_logger().info("done: %d clouds published" % self.n_published)
            self.timer.cancel()
            return
        now = self.get_clock().now().nanoseconds
        self.pub.publish(make_message(rec, self.layout, now, self.frame_id))
        self.n_published += 1


def main(args=None):
    rclpy.init(args=args)
    node = None
    try:
        node = ReplayNode()
        rclpy.spin(node)
    except KeyboardInterrupt:
        pass
    finally:
        if node is not None:
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return 0


if __name__ == "__main__":
    main()
