"""QoS profiles per kind of topic, so every node agrees on them.

- Sensor streams (point clouds, odometry from a driver): best effort, keep last few, as
  rclpy's SensorDataQoS; a subscriber with best effort also matches reliable publishers.
- Maps and static data: reliable + transient local, so a late subscriber gets the last one.
- cmd_vel: reliable, depth 1: only the newest command matters, and it must not be lost.
- Status and internal products (distance field, plans): reliable, small depth.
- TF: as tf2_ros's broadcasters (dynamic: reliable, depth 100; static: transient local).
"""
from rclpy.qos import (DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy,
                       qos_profile_sensor_data)

SENSOR_QOS = qos_profile_sensor_data

MAP_QOS = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST,
                     reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)

CMD_VEL_QOS = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST,
                         reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.VOLATILE)

STATUS_QOS = QoSProfile(depth=5, history=HistoryPolicy.KEEP_LAST,
                        reliability=ReliabilityPolicy.RELIABLE,
                        durability=DurabilityPolicy.VOLATILE)

# The newest distance field is all the planner needs; depth 1 keeps a slow planner from
# working through a backlog of old fields.
FIELD_QOS = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST,
                       reliability=ReliabilityPolicy.RELIABLE,
                       durability=DurabilityPolicy.VOLATILE)

# tf2_ros.TransformBroadcaster / StaticTransformBroadcaster's profiles, for publishers of
# tf2_msgs/TFMessage that do without tf2_ros
TF_QOS = QoSProfile(depth=100, history=HistoryPolicy.KEEP_LAST,
                    reliability=ReliabilityPolicy.RELIABLE,
                    durability=DurabilityPolicy.VOLATILE)
TF_STATIC_QOS = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST,
                           reliability=ReliabilityPolicy.RELIABLE,
                           durability=DurabilityPolicy.TRANSIENT_LOCAL)
