"""Perception core of the wm stack, plain Python (numpy/scipy, no rclpy).

pointcloud    -- validated, zero-copy decoding of sensor_msgs/PointCloud2 buffers
voxel_grid    -- range/height cropping, sparse voxelisation, 2D occupancy
distance_field -- signed Euclidean distance fields over occupancy grids
pipeline      -- sensor cloud -> odom-aligned voxels and distance field for the local planner
"""
