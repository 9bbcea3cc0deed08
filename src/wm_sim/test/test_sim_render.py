import numpy as np

from wm_sim.render import plot_paths
from wm_sim.world import warehouse


def test_plot_writes_png(tmp_path):
    w = warehouse("small")
    paths = {}
    for rid, s in w.spawns.items():
        g = w.goals[rid]
        t = np.linspace(0, 1, 50)[:, None]
        paths[rid] = np.array([s.x, s.y]) * (1 - t) + np.array([g.x, g.y]) * t
    out = plot_paths(w, paths, w.goals, {"robot_0": [(5.0, 4.0)]},
                     str(tmp_path / "sub" / "paths.png"))
    assert out.endswith("paths.png")
    with open(out, "rb") as f:
        head = f.read(8)
    assert head == b"\x89PNG\r\n\x1a\n"
