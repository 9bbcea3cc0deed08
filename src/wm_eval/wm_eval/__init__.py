"""Evaluation tools beside the stack: the demo, closed-loop runs against the simulator, the
in-process episodes of make eval and make sweep, and the fault drills. Like wm_sim, a tool
that imports the stack; no robot package imports it (tests/test_layers.py)."""
