"""wm_planner: the plain-Python planning core (MPPI) of the warehouse-robot navigation stack.

Nothing here imports rclpy or any ROS package: the planner node is a thin wrapper that
converts messages into the plain types of `wm_planner.models` and calls
`wm_planner.optimizer.MPPI.plan`. Python 3.8 / numpy 1.21 compatible.
"""
