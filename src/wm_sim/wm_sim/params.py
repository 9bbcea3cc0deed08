"""The simulator node's parameters: one source of truth for the node, the YAML check and the
README table."""
from wm_common.params import Param

SIM_PARAMS = [
    Param("engine", "mujoco", "physics: 'mujoco' (MuJoCo rigid-body physics) or 'kinematic' "
                              "(formula model, fast)"),
    Param("scenario", "", "scenario YAML (world, robots, payloads, timed events); overrides "
                          "world, robots, spawn_poses and payload_mass"),
    Param("world", "warehouse_small",
          "world to load: warehouse_small, warehouse_large or test_scene"),
    Param("robots", ["robot1"], "robot ids; each robot's topics live under /<id>/"),
    Param("spawn_poses", [0.0],
          "optional flat [x, y, yaw, ...] per robot in map; [0.0] = the world's own spawns"),
    Param("lockstep", True,
          "own /clock and wait for every robot's cmd_vel after each scan (nodes need "
          "use_sim_time); false: run in wall-clock time without /clock"),
    Param("control_period", 0.1, "simulated seconds between scans (one control cycle) [s]",
          0.01, 1.0),
    Param("wait_for_observer", False,
          "hold simulated time at 0 until /sim/cycle has a subscriber (an evaluation runner)"),
    Param("lockstep_timeout", 1.0,
          "wall seconds to wait for a robot's command before simulating on without it [s]",
          0.01, 60.0),
    Param("max_real_time_factor", 0.0,
          "cap on simulated/wall time (0: as fast as the nodes keep up)", 0.0, 1000.0),
    Param("physics_rate", 50.0, "odometry and ground-truth rate (physics sub-steps) [Hz]",
          5.0, 1000.0),
    Param("localization_rate", 10.0, "localization pose rate [Hz]", 0.5, 100.0),
    Param("lidar_rings", 16, "LiDAR vertical rings (16/32/64/128)", 1, 128),
    Param("lidar_columns", 512, "LiDAR columns per revolution", 16, 4096),
    Param("lidar_max_range", 20.0, "LiDAR max range [m]", 1.0, 200.0),
    Param("lidar_mount", [0.0, 0.0, 0.4, 0.0], "LiDAR pose in base_link [x, y, z, yaw]"),
    Param("lidar_frame", "lidar_link", "frame_id of the published clouds"),
    Param("odom_frame", "odom", "frame_id of odometry"),
    Param("base_frame", "base_link", "child_frame_id of odometry"),
    Param("publish_tf", True,
          "per robot on /<robot>/tf: odom->base (odometry) and map->odom (localization); on "
          "/<robot>/tf_static: base->lidar (lidar_mount). Needs tf2_msgs (a ROS install); "
          "without it the topics carry the same information"),
    Param("map_frame", "map", "frame of localization, ground truth and /map"),
    Param("cmd_vel_stamped", False, "expect geometry_msgs/TwistStamped on cmd_vel"),
    Param("cmd_timeout", 0.5, "the base stops when no command arrived for this long [s]",
          0.01, 10.0),
    Param("payload_mass", 0.0, "payload on every robot [kg]", 0.0, 1000.0),
    Param("floor_friction", 0.8, "wheel-floor friction coefficient (mujoco engine)", 0.05, 2.0),
    Param("map_resolution", 0.05, "resolution of the published /map [m]", 0.01, 1.0),
    Param("seed", 0, "random seed of sensor noise", 0, 2 ** 31 - 1),
    # Fault injection for the safety drills (tests/test_fault_drills.py), live-settable:
    Param("fault_odom", "", "fault drill: '' normal, 'nan' or 'absurd' odometry from now on"),
    Param("fault_pause", False, "fault drill: stop the simulation and /clock while true"),
    Param("fault_lidar", "",
          "fault drill: '' normal; 'zero' (every return zeros, as ouster-ros sends no-returns), "
          "'nan' (every return NaN), 'empty' (clouds without points) or 'front_dark' (the "
          "front half returns nothing: a covered window) from now on"),
    Param("fault_drop_box", "",
          "fault drill: '<robot_id> <distance>' drops a pallet that far ahead of the robot; "
          "'' removes it"),
]
