"""Gazebo (gz-sim Harmonic) assets of the wm stack: worlds, robot model, URDF, bridge config."""
