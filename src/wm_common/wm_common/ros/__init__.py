"""rclpy helpers shared by the wm nodes (the only part of wm_common that imports rclpy)."""
