"""The monitor node's parameters: one source of truth for the node, the YAML check and the
README table."""
from wm_common.params import Param

MONITOR_PARAMS = [
    Param("robot_id", "", "robot label of every metric and logged segment ('' = the last "
          "component of the node's namespace)"),
    Param("world_model_artifact", "worldmodel-1.0.0",
          "world-model artifact directory, or the name of one shipped with wm_world_model "
          "(the planner's); '' or none = measure plain unicycle kinematics instead"),
    Param("world_model_public_key", "",
          "Ed25519 public key file (PEM); when set, the artifact's signature must verify"),
    Param("dt", 0.1, "control period the world model steps [s] (the planner's dt)", 0.01, 1.0),
    Param("cmd_vel_stamped", False,
          "cmd_vel is geometry_msgs/TwistStamped (its stamp is the command time) instead of "
          "Twist (the receive time is)"),
    Param("map_frame", "map", "frame of localization_pose"),
    Param("odom_frame", "odom", "frame of odometry (header.frame_id)"),
    Param("base_frame", "base_link", "frame of a TwistStamped cmd_vel ('' in a message is "
          "accepted too)"),
    Param("time_tolerance", 0.02,
          "two commands dt +- this apart make a step; farther apart is a gap [s]", 0.001, 0.5),
    Param("max_delay", 0.5,
          "input older than this on arrival is stale; a step waits this long for the "
          "localization and odometry around it [s]", 0.05, 10.0),
    Param("max_gap", 0.25,
          "longest gap between two localization (or odometry) samples bridged by "
          "interpolation [s]", 0.01, 5.0),
    Param("window", 60.0, "rolling mean of the prediction error over this long [s]", 1.0,
          3600.0),
    Param("error_threshold", 0.05,
          "a step whose world-model position error exceeds this is logged with the steps "
          "before it [m]", 0.001, 10.0),
    Param("transitions_dir", "",
          "directory of the MCAP transition logs ('' = logging off)"),
    Param("segment_steps", 20,
          "control steps per logged segment (ending at the high-error step)", 1, 1000),
    Param("max_file_mb", 64.0, "size limit of one transition log file [MB]", 0.01, 10000.0),
    Param("max_files", 20, "transition log files kept (the oldest is deleted)", 1, 100000),
    Param("metrics_address", "127.0.0.1",
          "address the Prometheus endpoint binds ('0.0.0.0' = every interface)"),
    Param("metrics_port", 9469, "port of the Prometheus endpoint (0 = any free port)", 0,
          65535),
]
