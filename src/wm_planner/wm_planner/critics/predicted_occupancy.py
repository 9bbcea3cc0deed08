"""PredictedOccupancyCritic: keep away from where perception predicts things will be."""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from .base import Critic, time_weights


class PredictedOccupancyCritic(Critic):
    """Predicted occupancy (learned forecast) met by the footprint along the horizon.

    For step k (time t_k = k * dt after the state) the critic reads the prediction nearest
    in time (data.predictions, time_offset relative to the state). Nearest rather than
    interpolated: averaging a 0.5 s and a 1 s forecast of a moving robot gives two
    half-probability ghosts, both below the threshold, so the robot would vanish between
    them. A step with no prediction within `max_age` of it is not costed, so a stale
    forecast (or a 1 s forecast applied at 0.1 s) is ignored.
    p_k = max over the footprint circles of the probability within the circle (the grid is
    dilated by the circle's radius, then read at its centre);
    cost = sum_k w_k * max(0, p_k - threshold) / (1 - threshold), with w_k = 1 for
    time_power = 0 and weighting the near steps more for time_power > 0 (the weights always
    sum to H, so the cost counts "occupied steps").
    The forecast is learned and can be wrong: this is a soft cost only, it never flags
    data.in_collision. No prediction: zero cost.
    Only moving things: the forecast also marks shelves and walls, which the obstacle critic
    already keeps the robot off through the distance field. With data.esdf, forecast cells
    whose centre is within `static_margin` of an obstacle seen now (esdf <= static_margin)
    are dropped before the dilation, so a wall beside the path costs nothing here, while a
    cell free now but predicted occupied (a person, a forklift) still does. Cells outside
    the distance field are kept. Default 0.25 m, one cell of the shipped forecast (encoder_v2):
    a cell holding any of a wall has its centre within half a diagonal (0.18 m) of it, and
    the forecast smears a wall by about a cell. Without an esdf every cell counts.
    """

    name = "predicted_occupancy"
    nmpc_form = ("sampler only: the occupancy forecasts are not "
                 "parameters of the NLP")
    PARAMS = dict(Critic.PARAMS, weight=3.0, threshold=0.5, max_age=0.5, time_power=0.0,
                  static_margin=0.25)
    # Masked and dilated grids of the latest (forecast, esdf) pairs: one plan scores the
    # same objects on every iteration, so the mask and the dilations are built once a plan.
    CACHE_SIZE = 4

    def __init__(self, **params):
        super().__init__(**params)
        self._grids = OrderedDict()  # key -> (forecast, esdf, {radius: grid})

    def validate(self) -> None:
        if (not (0.0 <= self.threshold < 1.0) or self.max_age < 0.0 or self.time_power < 0.0
                or self.static_margin < 0.0):
            raise ValueError("predicted_occupancy: 0 <= threshold < 1, max_age >= 0, "
                             "time_power >= 0, static_margin >= 0")

    def _static(self, pred, esdf) -> np.ndarray:
        """(ny, nx) True where the forecast cell's centre is within static_margin of an
        obstacle in the distance field (an odom-aligned Grid2D; the forecast is turned by
        the robot's yaw, hence the cell centres in odom)."""
        xy = pred.cell_centres()
        fx = (xy[..., 0] - esdf.origin_x) / esdf.resolution
        fy = (xy[..., 1] - esdf.origin_y) / esdf.resolution
        inside = (fx >= 0.0) & (fx <= esdf.width) & (fy >= 0.0) & (fy <= esdf.height)
        return inside & (esdf.sample(xy) <= self.static_margin)

    def _grid(self, pred, esdf, radius: float):
        """`pred` without its static cells (with an esdf), dilated by `radius`; cached by
        the identity of both objects."""
        key = (id(pred), id(esdf), self.static_margin)
        entry = self._grids.get(key)
        if entry is None or entry[0] is not pred or entry[1] is not esdf:
            moving = pred if esdf is None else pred.without(self._static(pred, esdf))
            entry = (pred, esdf, {0.0: moving})
            self._grids[key] = entry
            while len(self._grids) > self.CACHE_SIZE:
                self._grids.popitem(last=False)
        else:
            self._grids.move_to_end(key)
        grids = entry[2]
        if radius not in grids:
            grids[radius] = grids[0.0].dilated(radius)
        return grids[radius]

    def _step_prediction(self, data, predictions) -> np.ndarray:
        """(H,) index of the prediction used at each step, -1 where none is close enough."""
        t = data.dt * np.arange(1, data.horizon + 1)
        offsets = np.array([p.time_offset for p in predictions], dtype=np.float64)
        gap = np.abs(t[:, None] - offsets[None, :])
        nearest = np.argmin(gap, axis=1)
        close = gap[np.arange(len(t)), nearest] <= self.max_age
        return np.where(close, nearest, -1)

    def probability(self, data) -> np.ndarray:
        """(K, H) predicted occupancy probability met by the footprint at each future step."""
        k, h = data.num_samples, data.horizon
        prob = np.zeros((k, h))
        predictions = [p for p in (data.predictions or ()) if p is not None]
        if not predictions:
            return prob
        use = self._step_prediction(data, predictions)
        circles = data.footprint_circles
        centres = data.circle_centres  # (K, H, C, 2), shared with the other critics
        radii = np.unique(circles[:, 2])
        for i, pred in enumerate(predictions):
            steps = np.flatnonzero(use == i)
            if len(steps) == 0:
                continue
            for r in radii:
                grid = self._grid(pred, data.esdf, float(r))
                sel = circles[:, 2] == r
                p = grid.probability_at(centres[:, steps][:, :, sel]).max(axis=-1)
                prob[:, steps] = np.maximum(prob[:, steps], p)
        return prob

    def cost(self, data):
        if not data.predictions:
            return np.zeros(data.num_samples)
        excess = np.maximum(self.probability(data) - self.threshold, 0.0) / (1.0 - self.threshold)
        h = data.horizon
        # time_weights grow toward the end; reversed, they favour the near (surer) steps.
        weights = time_weights(h, self.time_power)[::-1] * h
        return excess @ weights
