"""The simulator node's parameters: one source of truth for the node, the YAML check and the
README table."""
from wm_common.params import Param

SIM_PARAMS = [
    Param("world", "warehouse_small",
          "world to load: warehouse_small, warehouse_large or test_scene"),
    Param("robots", ["robot1"], "robot ids; each robot's topics live under /<id>/"),
    Param("spawn_poses", [0.0],
          "optional flat [x, y, yaw, ...] per robot in map; [0.0] = the world's own spawns"),
    Param("physics_rate", 50.0, "dynamics and odometry rate [Hz]", 5.0, 1000.0),
    Param("lidar_rate", 10.0, "LiDAR scan rate [Hz]", 1.0, 50.0),
    Param("localization_rate", 10.0, "localization pose rate [Hz]", 0.5, 100.0),
    Param("lidar_rings", 16, "LiDAR vertical rings (16/32/64/128)", 1, 128),
    Param("lidar_columns", 512, "LiDAR columns per revolution", 16, 4096),
    Param("lidar_max_range", 20.0, "LiDAR max range [m]", 1.0, 200.0),
    Param("lidar_mount", [0.0, 0.0, 0.4, 0.0], "LiDAR pose in base_link [x, y, z, yaw]"),
    Param("lidar_frame", "lidar_link", "frame_id of the published clouds"),
    Param("odom_frame", "odom", "frame_id of odometry"),
    Param("base_frame", "base_link", "child_frame_id of odometry"),
    Param("map_frame", "map", "frame of localization, ground truth and /map"),
    Param("cmd_vel_stamped", False, "expect geometry_msgs/TwistStamped on cmd_vel"),
    Param("cmd_timeout", 0.5, "the base stops when no command arrived for this long [s]",
          0.01, 10.0),
    Param("payload_mass", 0.0, "payload on every robot [kg]", 0.0, 1000.0),
    Param("map_resolution", 0.05, "resolution of the published /map [m]", 0.01, 1.0),
    Param("seed", 0, "random seed of sensor noise", 0, 2 ** 31 - 1),
]
