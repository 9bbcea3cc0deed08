"""One robot in Gazebo (gz-sim Harmonic or newer, through ros_gz) with its navigation nodes.

    ros2 launch wm_bringup sim.launch.py
    ros2 launch wm_bringup sim.launch.py world:=test_scene x:=2.5 y:=4.0 yaw:=0.0 rviz:=true

Starts Gazebo on wm_gazebo's worlds/<world>.sdf (running), spawns models/wm_robot/model.sdf
as <namespace> at (x, y, yaw), bridges the robot's topics with ros_gz_bridge under
/<namespace> (config/gz_bridge.yaml: /clock, points, odom, cmd_vel, /tf, joint_states),
runs robot_state_publisher on urdf/wm_robot.urdf and includes robot.launch.py (perception
and planner) with use_sim_time:=true.

The checked-in model and bridge config carry robot1's gz topics (/model/robot1/...); they
work under any namespace for a single robot. For a second robot in the same Gazebo, generate
its own pair with `ros2 run wm_gazebo export_gazebo --robot robot2 --out DIR` (see
wm_gazebo.export). Gazebo has no localization: with tf2 installed the planner takes map
goals only once something publishes map -> odom; goals in the odom frame work as they are.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import Command, LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare


def generate_launch_description():
    world = LaunchConfiguration("world")
    namespace = LaunchConfiguration("namespace")
    x = LaunchConfiguration("x")
    y = LaunchConfiguration("y")
    yaw = LaunchConfiguration("yaw")
    rviz = LaunchConfiguration("rviz")
    worlds_dir = PathJoinSubstitution([FindPackageShare("wm_gazebo"), "worlds"])
    model_file = PathJoinSubstitution([FindPackageShare("wm_gazebo"), "models", "wm_robot",
                                       "model.sdf"])
    bridge_config = PathJoinSubstitution([FindPackageShare("wm_gazebo"), "config",
                                          "gz_bridge.yaml"])
    urdf_file = PathJoinSubstitution([FindPackageShare("wm_gazebo"), "urdf", "wm_robot.urdf"])
    return LaunchDescription([
        DeclareLaunchArgument("world", default_value="warehouse_small",
                              description="world in wm_gazebo/worlds: warehouse_small or "
                                          "test_scene"),
        DeclareLaunchArgument("namespace", default_value="robot1",
                              description="robot id: Gazebo model name and ROS namespace"),
        # Defaults: warehouse_small's first spawn (test_scene: x:=2.5 y:=4.0).
        DeclareLaunchArgument("x", default_value="1.2", description="spawn x in map [m]"),
        DeclareLaunchArgument("y", default_value="2.0", description="spawn y in map [m]"),
        DeclareLaunchArgument("yaw", default_value="0.0", description="spawn yaw [rad]"),
        DeclareLaunchArgument("rviz", default_value="false", description="start RViz"),
        # Gazebo server and GUI, running (-r) the world.
        IncludeLaunchDescription(
            PythonLaunchDescriptionSource(
                PathJoinSubstitution([FindPackageShare("ros_gz_sim"), "launch",
                                      "gz_sim.launch.py"])),
            launch_arguments={"gz_args": [worlds_dir, "/", world, ".sdf -r"],
                              "on_exit_shutdown": "true"}.items()),
        Node(
            package="ros_gz_sim", executable="create", name="spawn_robot", output="screen",
            arguments=["-file", model_file, "-name", namespace,
                       "-x", x, "-y", y, "-z", "0.0", "-Y", yaw]),
        Node(
            package="ros_gz_bridge", executable="parameter_bridge", name="gz_bridge",
            namespace=namespace, output="screen",
            parameters=[{"config_file": bridge_config, "use_sim_time": True}]),
        Node(
            package="robot_state_publisher", executable="robot_state_publisher",
            name="robot_state_publisher", namespace=namespace, output="screen",
            parameters=[{"robot_description": ParameterValue(Command(["cat ", urdf_file]),
                                                             value_type=str),
                         "use_sim_time": True}]),
        IncludeLaunchDescription(
            PythonLaunchDescriptionSource(
                PathJoinSubstitution([FindPackageShare("wm_bringup"), "launch",
                                      "robot.launch.py"])),
            launch_arguments={"namespace": namespace, "use_sim_time": "true",
                              "rviz": rviz}.items()),
    ])
