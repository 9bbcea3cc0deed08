"""A fleet of N robots in wm_sim's own simulator (MuJoCo, lockstep /clock), each with its full
navigation stack (robot.launch.py under /robot1 ... /robotN), sharing through one Redis.

    ros2 launch wm_bringup fleet_sim.launch.py robots:=3
    ros2 launch wm_bringup fleet_sim.launch.py robots:=2 world:=warehouse_small rviz:=true
    ros2 launch wm_bringup fleet_sim.launch.py scenario:=/path/scenario.yaml robots:=2
    ros2 launch wm_bringup fleet_sim.launch.py redis_url:=rediss://fleet-redis:6380/0

The robots spawn at the world's own spawn poses (or the scenario's). With redis_url:=local
(the default) a redis-server is started on 127.0.0.1:<redis_port> without a password, for
this simulation only: it listens on loopback and keeps nothing on disk. Any other URL is used
as it is (the password from WM_REDIS_PASSWORD_FILE or WM_REDIS_PASSWORD, see the README).
`make demo` does the same without the launch library (wm_eval.runner).
"""
from launch import LaunchDescription
from launch.actions import (DeclareLaunchArgument, ExecuteProcess, IncludeLaunchDescription,
                            OpaqueFunction)
from launch.conditions import IfCondition
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution, PythonExpression
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare


def robots_and_simulator(context):
    count = int(LaunchConfiguration("robots").perform(context))
    if not 1 <= count <= 50:
        raise ValueError("robots must be between 1 and 50, got %d" % count)
    ids = ["robot%d" % (i + 1) for i in range(count)]
    redis_url = LaunchConfiguration("redis_url").perform(context)
    if redis_url == "local":
        redis_url = "redis://127.0.0.1:%s/0" % LaunchConfiguration("redis_port").perform(context)
    actions = [Node(
        package="wm_sim", executable="simulator", name="simulator", output="screen",
        parameters=[PathJoinSubstitution([FindPackageShare("wm_bringup"), "config", "sim.yaml"]),
                    {"world": LaunchConfiguration("world"),
                     "scenario": LaunchConfiguration("scenario"),
                     "engine": LaunchConfiguration("engine"),
                     "robots": ids,
                     # the gates publish TwistStamped: the base logs when each was issued
                     "cmd_vel_stamped": True}])]
    for i, robot in enumerate(ids):
        actions.append(IncludeLaunchDescription(
            PythonLaunchDescriptionSource(
                PathJoinSubstitution([FindPackageShare("wm_bringup"), "launch",
                                      "robot.launch.py"])),
            launch_arguments={"namespace": robot, "use_sim_time": "true",
                              "cmd_vel_stamped": "true", "redis_url": redis_url,
                              "rviz": "false",
                              # one Prometheus endpoint per robot on this host
                              "metrics_port": str(9469 + i)}.items()))
    return actions


def generate_launch_description():
    redis_url = LaunchConfiguration("redis_url")
    return LaunchDescription([
        DeclareLaunchArgument("robots", default_value="2",
                              description="number of robots (robot1 ... robotN), 1 to 50"),
        DeclareLaunchArgument("world", default_value="warehouse_large",
                              description="wm_sim world: warehouse_small, warehouse_large or "
                                          "test_scene (ignored with a scenario)"),
        DeclareLaunchArgument("scenario", default_value="",
                              description="scenario YAML (world, spawns, goals, events); '' = "
                                          "the world's spawns"),
        DeclareLaunchArgument("engine", default_value="mujoco",
                              description="simulator physics: mujoco or kinematic"),
        DeclareLaunchArgument("redis_url", default_value="local",
                              description="fleet Redis; 'local' starts a loopback redis-server "
                                          "for this simulation"),
        DeclareLaunchArgument("redis_port", default_value="6391",
                              description="port of the local redis-server"),
        DeclareLaunchArgument("rviz", default_value="false",
                              description="start RViz on robot1"),
        ExecuteProcess(
            cmd=["redis-server", "--bind", "127.0.0.1", "--port",
                 LaunchConfiguration("redis_port"), "--save", "", "--appendonly", "no"],
            name="redis_server", output="screen",
            condition=IfCondition(PythonExpression(["'", redis_url, "' == 'local'"]))),
        OpaqueFunction(function=robots_and_simulator),
        IncludeLaunchDescription(
            PythonLaunchDescriptionSource(
                PathJoinSubstitution([FindPackageShare("wm_bringup"), "launch",
                                      "rviz.launch.py"])),
            launch_arguments={"namespace": "robot1", "use_sim_time": "true"}.items(),
            condition=IfCondition(LaunchConfiguration("rviz"))),
    ])
