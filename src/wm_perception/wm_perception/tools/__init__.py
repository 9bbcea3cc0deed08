"""Offline tools: replay recorded clouds (replay, replay_node) and inspect the pipeline's
output on one cloud (inspect_cloud). open3d, rosbags and matplotlib are imported lazily here;
nothing in this package is on the perception node's hot path."""
