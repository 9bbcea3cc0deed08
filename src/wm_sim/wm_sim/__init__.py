"""Plain-Python simulator core of the wm warehouse navigation stack.

Worlds of box obstacles (world), differential-drive dynamics behind a small interface
(dynamics), wheel odometry (odometry), an AMCL stand-in (localization), an Ouster-like
organized 3D LiDAR (lidar), KPIs (evaluation) and path plots (render).

No rclpy or other ROS imports here: a separate node wraps these classes, and the tests
run under plain pytest. Python 3.8 / numpy 1.21 compatible.
"""
