"""One robot's navigation nodes: perception, planner, the safety gate, the fleet client and
the monitor, under the robot's namespace. The planner's command goes to the gate
(cmd_vel_nav); only the gate's collision_monitor publishes the base's cmd_vel.

    ros2 launch wm_bringup robot.launch.py namespace:=robot1
    ros2 launch wm_bringup robot.launch.py namespace:=robot1 params_file:=/path/robot.yaml \
        use_sim_time:=true rviz:=true

The nodes are lifecycle nodes. By default wm_bringup's lifecycle_manager brings them up in
order (perception, planner, collision_monitor, fleet_client, monitor: configure all, then
activate all), reports a failed configure with the node's own reason and brings them down in
reverse order on shutdown; with lifecycle_manager:=false each node configures and activates
itself.

TF per REP-105 in Nav2's multi-robot convention: each robot's transforms are on
/<namespace>/tf and /<namespace>/tf_static (every node here remaps /tf:=tf, /tf_static:=tf_static),
frames unprefixed (map, odom, base_link, lidar_link). The robot's drivers, its
robot_state_publisher and its localizer (AMCL, slam_toolbox) must publish there too: start them
in the same namespace with the same remaps.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution, PythonExpression
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch_ros.actions import LifecycleNode, Node
from launch_ros.substitutions import FindPackageShare

# Nav2's multi-robot convention: the robot's TF on /<namespace>/tf and /<namespace>/tf_static
TF_REMAPS = [("/tf", "tf"), ("/tf_static", "tf_static")]


def generate_launch_description():
    namespace = LaunchConfiguration("namespace")
    params_file = LaunchConfiguration("params_file")
    use_sim_time = LaunchConfiguration("use_sim_time")
    manager = LaunchConfiguration("lifecycle_manager")
    # with the manager the nodes wait for it; without, each one starts itself
    autostart = PythonExpression(["'", manager, "' != 'true'"])
    cmd_vel_stamped = LaunchConfiguration("cmd_vel_stamped")
    rviz = LaunchConfiguration("rviz")
    world_model = LaunchConfiguration("world_model")
    redis_url = LaunchConfiguration("redis_url")
    metrics_port = LaunchConfiguration("metrics_port")
    overrides = {"use_sim_time": use_sim_time, "autostart": autostart}
    return LaunchDescription([
        DeclareLaunchArgument("namespace", default_value="robot1",
                              description="robot id; every topic lives under /<namespace>"),
        DeclareLaunchArgument(
            "params_file",
            default_value=PathJoinSubstitution([FindPackageShare("wm_bringup"), "config",
                                                "robot.yaml"]),
            description="parameters of perception and planner (/**/node: keys)"),
        DeclareLaunchArgument("use_sim_time", default_value="false",
                              description="use /clock (simulation)"),
        DeclareLaunchArgument("lifecycle_manager", default_value="true",
                              description="bring the nodes up in order with wm_bringup's "
                                          "lifecycle_manager (false: each node starts itself)"),
        DeclareLaunchArgument("cmd_vel_stamped", default_value="false",
                              description="publish TwistStamped (Jazzy diff_drive_controller)"),
        DeclareLaunchArgument("rviz", default_value="false", description="start RViz"),
        DeclareLaunchArgument(
            "world_model", default_value="worldmodel-1.0.0",
            description="planner's world-model artifact: a directory, the name of one shipped "
                        "with wm_world_model, or none for unicycle kinematics (overrides "
                        "params_file, like cmd_vel_stamped)"),
        LifecycleNode(
            package="wm_perception", executable="perception", name="perception",
            namespace=namespace, output="screen",
            parameters=[params_file, overrides], remappings=TF_REMAPS),
        LifecycleNode(
            package="wm_planner", executable="planner", name="planner",
            namespace=namespace, output="screen",
            parameters=[params_file, overrides, {"world_model_artifact": world_model}],
            remappings=[("cmd_vel", "cmd_vel_nav")] + TF_REMAPS),
        DeclareLaunchArgument(
            "redis_url", default_value="",
            description="fleet Redis (redis://, rediss://, unix://) without the password; "
                        "'' = the WM_REDIS_URL environment variable"),
        LifecycleNode(
            package="wm_fleet", executable="fleet_client", name="fleet_client",
            namespace=namespace, output="screen",
            parameters=[params_file, overrides, {"redis_url": redis_url}],
            remappings=TF_REMAPS),
        LifecycleNode(
            package="wm_safety", executable="collision_monitor", name="collision_monitor",
            namespace=namespace, output="screen",
            parameters=[params_file, overrides, {"cmd_vel_stamped": cmd_vel_stamped}],
            remappings=TF_REMAPS),
        DeclareLaunchArgument(
            "metrics_port", default_value="9469",
            description="port of the monitor's Prometheus endpoint (one per robot on a host: "
                        "fleet_sim gives robot i 9469 + i - 1; 0 = any free port)"),
        # the world model's prediction error online, Prometheus metrics, high-error
        # transitions for retraining (wm_monitor; it only reads, it commands nothing)
        LifecycleNode(
            package="wm_monitor", executable="monitor", name="monitor",
            namespace=namespace, output="screen",
            parameters=[params_file, overrides, {"cmd_vel_stamped": cmd_vel_stamped,
                                                 "world_model_artifact": world_model,
                                                 "metrics_port": metrics_port}],
            remappings=TF_REMAPS),
        Node(
            package="wm_bringup", executable="lifecycle_manager", name="lifecycle_manager",
            namespace=namespace, output="screen",
            parameters=[{"node_names": ["perception", "planner", "collision_monitor",
                                        "fleet_client", "monitor"],
                         "use_sim_time": use_sim_time}],
            condition=IfCondition(manager)),
        IncludeLaunchDescription(
            PythonLaunchDescriptionSource(
                PathJoinSubstitution([FindPackageShare("wm_bringup"), "launch",
                                      "rviz.launch.py"])),
            launch_arguments={"namespace": namespace, "use_sim_time": use_sim_time}.items(),
            condition=IfCondition(rviz)),
    ])
