"""Hybrid world model of the wm navigation stack (calibrated unicycle + bounded learned
residual): model, data, training, evaluation and versioned artifacts. No rclpy."""
