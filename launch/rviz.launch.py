"""RViz for one robot, with the robot's model, in the robot's namespace.

    ros2 launch wm_bringup rviz.launch.py
    ros2 launch wm_bringup rviz.launch.py namespace:=robot2 rviz_config:=/path/view.rviz

Multi-robot convention: each robot runs in namespace robotN and its TF is on /robotN/tf and
/robotN/tf_static, frames unprefixed (map, odom, base_link, lidar_link), as Nav2's multi-robot
launch does. So RViz and robot_state_publisher both run in <namespace> with /tf:=tf and
/tf_static:=tf_static; RViz's tools publish 2D Pose Estimate, 2D Goal Pose and Publish Point on
<namespace>/initialpose, <namespace>/goal_pose and <namespace>/clicked_point (config/wm.rviz names
them relatively; the remaps cover a config that names them absolutely). robot_state_publisher
publishes wm_gazebo's urdf/wm_robot.urdf as <namespace>/robot_description (no frame_prefix:
frames stay unprefixed) for the RobotModel display.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import Command, LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

TF_REMAPS = [("/tf", "tf"), ("/tf_static", "tf_static")]
TOOL_REMAPS = [("/goal_pose", "goal_pose"), ("/initialpose", "initialpose"),
               ("/clicked_point", "clicked_point")]


def generate_launch_description():
    namespace = LaunchConfiguration("namespace")
    rviz_config = LaunchConfiguration("rviz_config")
    use_sim_time = LaunchConfiguration("use_sim_time")
    urdf_file = PathJoinSubstitution([FindPackageShare("wm_gazebo"), "urdf", "wm_robot.urdf"])
    return LaunchDescription([
        DeclareLaunchArgument("namespace", default_value="robot1",
                              description="robot id: RViz shows /<namespace>/... topics"),
        DeclareLaunchArgument(
            "rviz_config",
            default_value=PathJoinSubstitution([FindPackageShare("wm_bringup"), "config",
                                                "wm.rviz"]),
            description="RViz config file"),
        DeclareLaunchArgument("use_sim_time", default_value="false",
                              description="use /clock (simulation)"),
        Node(
            package="robot_state_publisher", executable="robot_state_publisher",
            name="robot_state_publisher", namespace=namespace, output="screen",
            parameters=[{"robot_description": ParameterValue(Command(["cat ", urdf_file]),
                                                             value_type=str),
                         "use_sim_time": use_sim_time}],
            remappings=TF_REMAPS),
        Node(
            package="rviz2", executable="rviz2", name="rviz2", namespace=namespace,
            output="screen", arguments=["-d", rviz_config],
            parameters=[{"use_sim_time": use_sim_time}],
            remappings=TF_REMAPS + TOOL_REMAPS),
    ])
