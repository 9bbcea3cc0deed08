"""Shared pieces of the wm stack: plain-Python geometry and grids (no rclpy) and,
under wm_common.ros, the small rclpy helpers every node uses."""
