"""The perception node's parameters: one source of truth for the node, the YAML check and the
README table."""
from wm_common.params import Param
from wm_perception.blindness import blindness_params

PERCEPTION_PARAMS = [
    Param("odom_frame", "odom", "frame of the voxel grid and the distance field"),
    Param("base_frame", "base_link", "robot body frame"),
    Param("sensor_frame", "lidar_link",
          "expected frame_id of the first LiDAR's clouds when tf2 is not used (clouds in "
          "another frame are rejected; base_frame is always accepted)"),
    Param("point_topics", ["points"],
          "the LiDARs' PointCloud2 topics; the first paces the distance field, the newest "
          "cloud of each other one is merged into it (motion-compensated through odom)"),
    Param("sensor_extrinsic", [0.0, 0.0, 0.4, 0.0],
          "pose of each LiDAR in base_frame, flat [x, y, z, yaw] per point_topics entry "
          "(m, rad), used without tf2; the first is sensor_frame's", any_length=True),
    Param("use_tf", "auto",
          "sensor->base source: 'auto' (tf2 if importable, else sensor_extrinsic), 'tf', "
          "'static'"),
    Param("resolution", 0.1, "voxel and distance-field cell size [m]", 0.02, 1.0),
    Param("field_subdivision", 2,
          "the distance field is computed from the points' occupancy on a grid this many "
          "times finer, read back at its cells (edges off by resolution / this, not a whole "
          "voxel; 1: the voxels themselves, also when scans are accumulated)", 1, 4),
    Param("window_size", 16.0, "side of the local window centred on the robot [m]", 2.0, 100.0),
    Param("z_min", 0.05, "lowest height kept, above the floor in base frame [m]", -5.0, 5.0),
    Param("z_max", 1.8, "highest height kept [m] (the robot's height plus margin)", -5.0, 10.0),
    Param("min_range", 0.35, "points nearer the sensor are the robot itself [m]", 0.0, 10.0),
    Param("max_range", 15.0, "points farther are dropped [m]", 0.5, 300.0),
    Param("min_points_per_voxel", 1, "points a voxel needs to count as occupied", 1, 1000),
    Param("max_distance", 3.0, "distance field saturates here; unknown space reads this [m]",
          0.1, 50.0),
    Param("max_points", 2000000, "clouds with more points are rejected", 1, 50000000),
    Param("track_unknown", True,
          "tell never-observed cells from observed-free ones (cleared along the rays of real "
          "returns): the distance field's unknown mask, -1 in occupancy"),
    Param("max_cloud_age", 0.5, "clouds older than this on the node's clock are rejected [s]",
          0.01, 60.0),
    Param("max_future", 0.2, "clouds stamped further in the future are rejected [s]",
          0.0, 60.0),
    Param("odom_tolerance", 0.1, "max gap between a cloud's stamp and the odometry used [s]",
          0.001, 5.0),
    Param("size_z", 0.0, "voxel grid height above z_min [m] (0: z_max - z_min)", 0.0, 20.0),
    Param("deskew", False,
          "motion-compensate each point with its time field and the odometry twist"),
    Param("time_field", "t",
          "per-point time field for deskew when the cloud has it; else the driver layout's "
          "own (Ouster 't' ns, Velodyne 'time' s, Hesai 'timestamp' s, Livox 'timestamp' ns: "
          "the units come from the layout, wm_common.point_layouts)"),
    Param("time_absolute", False,
          "the time field is absolute even though small (absolute times after 1e6 s, as "
          "Hesai's and Livox's, are recognised without it)"),
    Param("outlier_filter", False,
          "statistical outlier removal (costly: hundreds of ms on 131k points; for sparse or "
          "noisy sensors)"),
    Param("outlier_neighbors", 16, "neighbours considered by the outlier filter", 2, 256),
    Param("outlier_std_ratio", 2.0, "outlier filter threshold in standard deviations",
          0.1, 100.0),
    Param("accumulate_scans", 1, "accumulate voxel counts over this many scans (1: off)",
          1, 100),
    Param("accumulate_decay", 0.7, "per-scan factor on accumulated counts", 0.01, 1.0),
    Param("encoder_artifact", "",
          "folder of a scene-encoder artifact (encoder.json + encoder.pt) whose predicted "
          "occupancy is published; '' = off"),
    Param("encoder_backend", "auto", "scene encoder: 'auto' (spconv if importable), 'sparse' "
                                     "or 'dense' (same weights, same outputs)"),
    Param("encoder_every", 2, "predict occupancy every N clouds (it costs ~10-40 ms on a CPU)",
          1, 100),
    Param("marker_every", 5, "publish voxel markers every N clouds (0: never)", 0, 1000),
    # A blind LiDAR (covered, dirty, failing; all-zero or all-NaN organized clouds) delivers
    # fresh clouds with no returns: wm_perception.blindness. While blind no distance field
    # is published, so the planner stops (its field_timeout), and /diagnostics says why.
] + blindness_params("no distance field is published (the planner stops)")
