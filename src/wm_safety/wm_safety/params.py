"""The collision monitor's parameters: one source of truth for the node, the YAML check and the
README table."""
from wm_common.footprint import DEFAULT_FOOTPRINT
from wm_common.localization import localization_params
from wm_common.params import Param
from wm_perception.blindness import blindness_params

SAFETY_PARAMS = [
    Param("base_frame", "base_link", "frame of the zones and of TwistStamped output"),
    Param("map_frame", "map", "frame of localization_pose and the speed-zone layer"),
    Param("odom_frame", "odom", "frame of odom (with a speed-zone layer)"),
    Param("cmd_vel_stamped", False,
          "publish geometry_msgs/TwistStamped on cmd_vel (Jazzy diff_drive_controller)"),
    Param("rate", 20.0, "rate of continuous zero while no input drives [Hz]", 1.0, 200.0),
    Param("nav_timeout", 0.5, "cmd_vel_nav older than this is ignored: the robot stops [s]",
          0.05, 5.0),
    Param("teleop_timeout", 0.5, "cmd_vel_teleop older than this hands back to navigation [s]",
          0.05, 5.0),
    Param("estop_hold", 1.0,
          "resume is refused while the e-stop input asserted True this recently [s]",
          0.0, 10.0),
    Param("points_timeout", 0.5, "without a cloud (or scan) this recent the robot stops [s]",
          0.05, 5.0),
    Param("max_future", 0.2, "clouds stamped further ahead of the clock are rejected [s]",
          0.0, 5.0),
    Param("max_points", 2000000, "clouds with more points are rejected", 1, 100000000),
    Param("point_topics", ["points"],
          "the LiDARs' PointCloud2 topics: their newest points are merged, and the robot is "
          "held while any of them is silent (points_timeout) or blind"),
    Param("sensor_extrinsic", [0.0, 0.0, 0.4, 0.0],
          "each LiDAR's pose in base_link, flat [x, y, z, yaw] per point_topics entry (static: "
          "the gate does not depend on tf)", any_length=True),
    Param("z_min", 0.05, "lowest point that counts as an obstacle, in base_link [m]",
          -1.0, 5.0),
    Param("z_max", 1.9, "highest point that counts as an obstacle, in base_link [m]",
          -1.0, 10.0),
    Param("use_scan", False, "also read a 2D LaserScan on `scan` (same extrinsic)"),
    Param("footprint", list(DEFAULT_FOOTPRINT),
          "chassis polygon in base_link, flat [x1, y1, x2, y2, ...] [m]; points inside the "
          "footprint (with payload) are the robot itself and ignored", any_length=True),
    Param("payload_overhangs", [1.0, 0.05, 0.05, 0.0],
          "payload overhang beyond the chassis, flat groups [min_mass_kg, front, rear, side]: "
          "the row with the largest min_mass <= payload applies (unknown payload: the "
          "largest) [kg, m]", any_length=True),
    Param("stop_margins", [0.10, 0.10, 0.03],
          "stop zone: footprint grown by [front, rear, side] [m]"),
    Param("slowdown_margins", [0.40, 0.25, 0.06],
          "slowdown zone: footprint grown by [front, rear, side] [m]"),
    Param("slowdown_ratio", 0.5, "speed scale while points are in the slowdown zone",
          0.0, 1.0),
    Param("time_horizon", 1.5, "approach zone: how far ahead the commanded motion is swept [s]",
          0.1, 5.0),
    Param("time_step", 0.05, "approach zone: sweep resolution [s]", 0.01, 0.5),
    Param("approach_margin", 0.05, "approach zone: stop this far before contact [m]",
          0.0, 1.0),
    Param("reaction_time", 0.15,
          "approach zone: delay before braking (cloud period + jerk ramp) [s]", 0.0, 2.0),
    Param("escape", True,
          "a creep that strictly increases clearance passes a stop (nose to nose, a shelf "
          "after a localization jump): never e-stop, pause or blind"),
    Param("escape_speed", 0.05, "escape: creep speed limit (a faster command is scaled "
          "down to it, direction kept) [m/s]", 0.0, 0.2),
    Param("escape_angular_speed", 0.15, "escape: creep turn-rate limit [rad/s]", 0.0, 0.5),
    Param("escape_horizon", 0.5,
          "escape: how long the creep is swept (at time_step); clearance may never fall "
          "below its current value and must grow over the first step [s]", 0.1, 5.0),
    Param("max_linear", 0.8, "speed limit of the base, forward [m/s]", 0.0, 5.0),
    Param("min_linear", -0.3, "speed limit of the base, reverse (<= 0) [m/s]", -5.0, 0.0),
    Param("max_angular", 1.5, "turn-rate limit of the base [rad/s]", 0.0, 10.0),
    Param("accel_linear", 1.0, "linear acceleration limit [m/s^2]", 0.01, 20.0),
    Param("decel_linear", 1.0, "linear braking limit (every stop but the e-stop) [m/s^2]",
          0.01, 20.0),
    Param("jerk_linear", 5.0, "linear jerk limit (0: none) [m/s^3]", 0.0, 1000.0),
    Param("accel_angular", 2.5, "angular acceleration limit [rad/s^2]", 0.01, 50.0),
    Param("decel_angular", 2.5, "angular braking limit [rad/s^2]", 0.01, 50.0),
    Param("jerk_angular", 20.0, "angular jerk limit (0: none) [rad/s^3]", 0.0, 1000.0),
    Param("max_dt", 0.1,
          "longest step the smoother integrates at once; the planner's control period, so a "
          "late clock never turns into a larger step at the base [s]", 0.01, 1.0),
    Param("speed_zones", "",
          "speed-limit layer (Nav2 speed-filter mask YAML); '' = none; a relative path is "
          "looked up in wm_bringup's config/speed_zones/"),
    *localization_params("the layer's slowest limit applies"),
    Param("odom_timeout", 0.5,
          "without odometry this recent the map position is unknown: the layer's slowest "
          "limit applies [s]", 0.05, 10.0),
    # the same blindness check as perception's (wm_perception.blindness), run on the raw
    # clouds by the gate itself: a LiDAR without returns holds the robot
    *blindness_params("the robot is held (braked at decel_linear)"),
]
