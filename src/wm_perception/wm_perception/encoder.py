"""Learned scene encoding: a sparse 3D convolution encoder, a motion-conditioned latent
transition and a bird's-eye occupancy decoder (TD-MPC2-style encode -> next -> decode).

Input: the perception pipeline's voxels re-binned into a ROBOT-CENTRED, robot-aligned grid
(base_link frame; default 64 x 64 x 8 cells of 0.25 m: x, y in [-8, 8) m, z in
[0.05, 2.05) m), one feature vector per occupied cell: [1, (log1p(count) - mean) / std].

    encode(coords, feats, batch)  sparse 3D convs -> BEV map -> latent z (B, C, 32, 32),
                                  SimNorm'd over groups of 8 channels (TD-MPC2)
    next(z, motion)               one step (step_dt, default 0.5 s) of the robot's planar
                                  motion (dx, dy, dyaw, v, w) -> next latent; residual conv
                                  block with FiLM conditioning and fixed x/y coordinate planes
    decode(z, occ)                (B, H, W) occupancy logits of the scans at that step,
                                  expressed in the CURRENT base frame (row = iy, col = ix):
                                  RESIDUAL form (v2) logits = a * logit(occ) + r(z, occ),
                                  occ = the current BEV occupancy at full resolution
                                  (bev_occupancy(coords): the static-world baseline), a a
                                  learned gain, r a correction upsampled from the latent;
                                  the static scene comes for free, the net learns motion
    predict(coords, feats, motions (B, K, 5)) -> (B, K, H, W) logits at steps 1..K

Backends (same module tree, same state_dict, same outputs at active sites):
  'sparse'  spconv.pytorch SubMConv3d / SparseConv3d;
  'dense'   torch.nn.functional.conv3d on a dense grid, masked to the sites spconv would
            compute: a submanifold conv keeps the input's active set (output * mask), a
            strided conv (kernel == stride, no padding) activates an output cell iff any
            input cell of its block is active (mask = max_pool3d(mask)). Inactive sites
            hold 0, like spconv's .dense().
  'auto'    'sparse' when spconv imports, else 'dense' (e.g. Jetson Xavier, where NVIDIA's
            sparse-conv library does not run on the GPU).
Weight layout: spconv 2.x (default algorithm) stores conv weights as
(Cout, kD, kH, kW, Cin) ("KRSC"); torch Conv3d wants (Cout, Cin, kD, kH, kW). The dense
backend stores its parameter in the spconv layout and permutes at run time
(w.permute(0, 4, 1, 2, 3)), so one state_dict loads into both backends unchanged.
(spconv 1.x / ConvAlgo.Native used (kD, kH, kW, Cin, Cout): w.permute(4, 3, 0, 1, 2);
the sparse builder checks the layout and refuses anything else.) Spatial order is
(z, y, x) everywhere: coords are (batch, iz, iy, ix).

Plain torch (>= 2.0) + numpy, no rclpy; Python 3.8 syntax.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from wm_common.files import sha256_file

try:  # spconv is optional: the dense backend reproduces it
    import spconv.pytorch as _spconv
    HAVE_SPCONV = True
except Exception:  # noqa: BLE001 - ImportError, or a broken CUDA/cumm install
    _spconv = None
    HAVE_SPCONV = False

ARTIFACT_VERSION = 2   # 2: residual decoder (v1 artifacts have a different state_dict)
# logit(clamp(occ, 0.05, 0.95)): the static-world prior, +-2.94 for occupied / free cells
BASE_LOGIT = math.log(0.95 / 0.05)
WEIGHTS_NAME = "encoder.pt"
META_NAME = "encoder.json"


class ArtifactError(RuntimeError):
    """The encoder artifact is missing, corrupted or from an incompatible version."""


@dataclasses.dataclass(frozen=True)
class EncoderConfig:
    # Robot-centred input grid, base_link frame.
    nx: int = 64
    ny: int = 64
    nz: int = 8
    resolution: float = 0.25
    z_min: float = 0.05
    # Sparse 3D stack: a full-resolution submanifold conv, then a 2x downsampling block.
    channels: Tuple[int, ...] = (8, 16)     # per resolution level
    in_channels: int = 2                    # [1, normalised log1p(count)]
    latent_channels: int = 32               # at (ny/2, nx/2): 0.5 m cells
    hidden: int = 32
    simnorm_group: int = 8
    motion_dim: int = 5                     # dx, dy, dyaw (previous step's frame), v, w
    motion_scale: Tuple[float, ...] = (0.5, 0.5, 0.75, 1.0, 1.5)
    step_dt: float = 0.5                    # seconds per transition step
    horizon: int = 2                        # steps trained (0.5 s and 1 s)
    # Normalisation of log1p(points per cell), fitted on the training data.
    count_mean: float = 0.0
    count_std: float = 1.0

    @property
    def origin(self) -> Tuple[float, float, float]:
        return (-0.5 * self.nx * self.resolution, -0.5 * self.ny * self.resolution, self.z_min)

    @property
    def down(self) -> int:
        return 2 ** (len(self.channels) - 1)

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    @staticmethod
    def from_dict(d: Dict[str, Any]) -> "EncoderConfig":
        names = {f.name for f in dataclasses.fields(EncoderConfig)}
        kw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items() if k in names}
        return EncoderConfig(**kw)


# ---------------------------------------------------------------------- input helpers
def _rotate_to_base(xy: np.ndarray, base_in_odom: Sequence[float]) -> np.ndarray:
    x0, y0, yaw = (float(v) for v in base_in_odom[:3])
    c, s = math.cos(yaw), math.sin(yaw)
    dx = xy[:, 0] - x0
    dy = xy[:, 1] - y0
    return np.stack([c * dx + s * dy, -s * dx + c * dy], axis=1)


def points_to_cells(points_base: np.ndarray, cfg: EncoderConfig,
                    weights: Optional[np.ndarray] = None) -> Tuple[np.ndarray, np.ndarray]:
    """(N, 3) base-frame points (+ optional weights, e.g. voxel counts) -> unique cell
    coords (M, 3) int32 (iz, iy, ix) and summed weights (M,) float32."""
    p = np.asarray(points_base, dtype=np.float64).reshape(-1, 3)
    o = cfg.origin
    dims = (cfg.nx, cfg.ny, cfg.nz)
    with np.errstate(invalid="ignore"):
        c = [np.floor((p[:, k] - o[k]) / cfg.resolution) for k in range(3)]
    inside = np.ones(p.shape[0], dtype=bool)
    for k in range(3):
        inside &= (c[k] >= 0) & (c[k] < dims[k])
    ix, iy, iz = (c[k][inside].astype(np.int64) for k in range(3))
    lin = ix + cfg.nx * (iy + cfg.ny * iz)
    w = np.ones(lin.shape[0]) if weights is None else np.asarray(weights, np.float64)[inside]
    uniq, inv = np.unique(lin, return_inverse=True)
    sums = np.bincount(inv.reshape(-1), weights=w, minlength=uniq.shape[0])
    coords = np.stack([uniq // (cfg.nx * cfg.ny), (uniq // cfg.nx) % cfg.ny, uniq % cfg.nx],
                      axis=1).astype(np.int32)
    return coords, sums.astype(np.float32)


def cells_from_voxels(voxels: Any, base_in_odom: Sequence[float],
                      cfg: EncoderConfig) -> Tuple[np.ndarray, np.ndarray]:
    """The pipeline's odom-frame VoxelGrid (Perception.process(...).voxels) -> robot-centred
    encoder cells: voxel centres moved into base_link (x, y, yaw of base_in_odom; odom z is
    base z) and re-binned at cfg.resolution, point counts summed."""
    centers = voxels.centers()
    if centers.shape[0] == 0:
        return np.zeros((0, 3), np.int32), np.zeros(0, np.float32)
    xy = _rotate_to_base(centers[:, :2], base_in_odom)
    pts = np.concatenate([xy, centers[:, 2:3]], axis=1)
    return points_to_cells(pts, cfg, voxels.values)


def bev_from_cells(coords: np.ndarray, cfg: EncoderConfig) -> np.ndarray:
    """(ny, nx) bool bird's-eye occupancy of encoder cells (any z)."""
    occ = np.zeros((cfg.ny, cfg.nx), dtype=bool)
    if coords.shape[0]:
        occ[coords[:, 1], coords[:, 2]] = True
    return occ


def features(counts: np.ndarray, cfg: EncoderConfig) -> np.ndarray:
    """Per-cell input features [1, (log1p(count) - mean) / std], (M, 2) float32."""
    f = (np.log1p(np.asarray(counts, np.float64)) - cfg.count_mean) / max(cfg.count_std, 1e-6)
    return np.stack([np.ones_like(f), f], axis=1).astype(np.float32)


def batch_coords(coords_list: Sequence[np.ndarray]) -> np.ndarray:
    """Concatenate per-sample (M_i, 3) coords into (sum M_i, 4) int32 [b, iz, iy, ix]."""
    out = [np.concatenate([np.full((c.shape[0], 1), b, np.int32), c.astype(np.int32)], axis=1)
           for b, c in enumerate(coords_list)]
    return np.concatenate(out, axis=0) if out else np.zeros((0, 4), np.int32)


# ---------------------------------------------------------------------- 3D conv layers
class DenseSparseConv3d(nn.Module):
    """nn.Conv3d stand-in for spconv's SubMConv3d (subm=True, odd kernel, 'same' padding)
    or SparseConv3d (kernel == stride, no padding), parameters in spconv's layout."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, subm: bool):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(cout, kernel, kernel, kernel, cin))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.kernel = kernel
        self.stride = stride
        self.subm = subm
        bound = 1.0 / math.sqrt(cin * kernel ** 3)
        nn.init.uniform_(self.weight, -bound, bound)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        w = self.weight.permute(0, 4, 1, 2, 3)
        if self.subm:
            y = F.conv3d(x, w, self.bias, padding=self.kernel // 2)
        else:
            y = F.conv3d(x, w, self.bias, stride=self.stride)
            mask = F.max_pool3d(mask, self.kernel, self.stride)
        return y * mask, mask


def make_conv3d(kind: str, cin: int, cout: int, backend: str, key: str) -> nn.Module:
    """The one 3D layer builder: kind 'subm' (3x3x3 submanifold) or 'down' (2x2x2 stride 2)."""
    subm = kind == "subm"
    k, s = (3, 1) if subm else (2, 2)
    if backend == "dense":
        return DenseSparseConv3d(cin, cout, k, s, subm)
    if not HAVE_SPCONV:
        raise RuntimeError("backend 'sparse' needs spconv (pip install spconv / spconv-cuXXX)")
    if subm:
        m = _spconv.SubMConv3d(cin, cout, k, stride=1, padding=1, bias=True, indice_key=key)
    else:
        m = _spconv.SparseConv3d(cin, cout, k, stride=s, padding=0, bias=True, indice_key=key)
    if tuple(m.weight.shape) != (cout, k, k, k, cin):
        raise RuntimeError("unexpected spconv weight layout %s; expected (Cout, k, k, k, Cin)"
                           % (tuple(m.weight.shape),))
    return m


def layer_plan(cfg: EncoderConfig) -> List[Tuple[str, int, int]]:
    """(kind, cin, cout) of the 3D stack: one 'subm' at full resolution, then per further
    level a 'down' and two 'subm'."""
    plan = [("subm", cfg.in_channels, cfg.channels[0])]
    cin = cfg.channels[0]
    for c in cfg.channels[1:]:
        plan.append(("down", cin, c))
        plan.append(("subm", c, c))
        plan.append(("subm", c, c))
        cin = c
    return plan


class DenseEncoder3d(nn.Module):
    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.layers = nn.ModuleList([make_conv3d(k, a, b, "dense", "")
                                     for k, a, b in layer_plan(cfg)])
        self.shape = [cfg.nz, cfg.ny, cfg.nx]
        self.in_channels = cfg.in_channels

    def forward(self, coords: torch.Tensor, feats: torch.Tensor, batch: int) -> torch.Tensor:
        nz, ny, nx = self.shape[0], self.shape[1], self.shape[2]
        c = coords.long()
        lin = ((c[:, 0] * nz + c[:, 1]) * ny + c[:, 2]) * nx + c[:, 3]
        flat = torch.zeros(batch * nz * ny * nx, self.in_channels, dtype=feats.dtype,
                           device=feats.device)
        flat = flat.index_copy(0, lin, feats)
        x = flat.view(batch, nz, ny, nx, self.in_channels).permute(0, 4, 1, 2, 3).contiguous()
        ones = torch.ones(lin.shape[0], dtype=feats.dtype, device=feats.device)
        mask = torch.zeros(batch * nz * ny * nx, dtype=feats.dtype, device=feats.device)
        mask = mask.index_copy(0, lin, ones).view(batch, 1, nz, ny, nx)
        for layer in self.layers:
            x, mask = layer(x, mask)
            x = F.relu(x)
        return x


class SparseEncoder3d(nn.Module):
    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        mods = []
        level = 0
        for kind, a, b in layer_plan(cfg):
            if kind == "down":
                mods.append(make_conv3d(kind, a, b, "sparse", "down%d" % level))
                level += 1
            else:
                mods.append(make_conv3d(kind, a, b, "sparse", "subm%d" % level))
        self.layers = nn.ModuleList(mods)
        self.shape = [cfg.nz, cfg.ny, cfg.nx]

    def forward(self, coords: torch.Tensor, feats: torch.Tensor, batch: int) -> torch.Tensor:
        # spconv 2.3.8's CPU kernels race when torch runs more than one intra-op thread
        # (measured: outputs change from call to call by up to 5 % of their magnitude with
        # 2 threads, and it is 8x slower); on CPU the sparse layers run single-threaded.
        # In eval mode spconv fuses bias + activation, which its CPU path refuses ("cpu don't
        # support act and bias"); these layers have no train/eval difference, so on CPU they
        # run with training=True.
        cpu = not feats.is_cuda
        n_threads = torch.get_num_threads()
        single = cpu and n_threads > 1
        if single:
            torch.set_num_threads(1)
        modes = [m.training for m in self.layers]
        try:
            x = _spconv.SparseConvTensor(feats, coords.int(), self.shape, batch)
            for layer in self.layers:
                if cpu:
                    layer.training = True
                x = layer(x)
                x = x.replace_feature(F.relu(x.features))
            out = x.dense()
        finally:
            for layer, mode in zip(self.layers, modes):
                layer.training = mode
            if single:
                torch.set_num_threads(n_threads)
        return out


# ---------------------------------------------------------------------- the model
def simnorm(z: torch.Tensor, group: int) -> torch.Tensor:
    """TD-MPC2's simplicial normalisation: softmax over groups of `group` channels."""
    b, c, h, w = z.shape
    return F.softmax(z.view(b, c // group, group, h, w), dim=2).view(b, c, h, w)


def _coord_planes(h: int, w: int) -> torch.Tensor:
    ys = torch.linspace(-1.0, 1.0, h).view(1, 1, h, 1).expand(1, 1, h, w)
    xs = torch.linspace(-1.0, 1.0, w).view(1, 1, 1, w).expand(1, 1, h, w)
    return torch.cat([xs, ys], dim=1).contiguous()


def resolve_backend(backend: str) -> str:
    if backend == "auto":
        return "sparse" if HAVE_SPCONV else "dense"
    if backend not in ("sparse", "dense"):
        raise ValueError("backend must be 'auto', 'sparse' or 'dense', got %r" % (backend,))
    return backend


class SceneModel(nn.Module):
    """encode -> next -> decode; see the module docstring for frames and shapes."""

    def __init__(self, config: EncoderConfig = EncoderConfig(), backend: str = "auto"):
        super().__init__()
        cfg = config
        if cfg.nx % (2 * cfg.down) or cfg.ny % (2 * cfg.down) or cfg.nz % cfg.down:
            raise ValueError("grid dims must be divisible by the downsampling")
        if cfg.latent_channels % cfg.simnorm_group:
            raise ValueError("latent_channels must be a multiple of simnorm_group")
        self.config = cfg
        self.backend = resolve_backend(backend)
        self.encoder3d = (SparseEncoder3d(cfg) if self.backend == "sparse"
                          else DenseEncoder3d(cfg))
        d = cfg.down
        h, w = cfg.ny // d, cfg.nx // d
        bev_in = cfg.channels[-1] * (cfg.nz // d)
        hid, lat = cfg.hidden, cfg.latent_channels
        self.to_latent = nn.Sequential(nn.Conv2d(bev_in, hid, 3, padding=1), nn.ReLU(),
                                       nn.Conv2d(hid, lat, 1))
        self.motion_mlp = nn.Sequential(nn.Linear(cfg.motion_dim, hid), nn.ReLU(),
                                        nn.Linear(hid, 2 * hid))
        self.trans_in = nn.Conv2d(lat + 2, hid, 3, padding=1)
        self.trans_out = nn.Sequential(nn.Conv2d(hid, hid, 3, padding=1), nn.ReLU(),
                                       nn.Conv2d(hid, lat, 1))
        self.dec = nn.Sequential(nn.Conv2d(lat + 2, hid, 3, padding=1), nn.ReLU(),
                                 nn.ConvTranspose2d(hid, hid // 2, d, stride=d), nn.ReLU())
        # Residual head at full resolution: upsampled latent features + the current BEV
        # occupancy (so a correction can follow the 0.25 m outline of what is there now).
        # Zero-initialised: an untrained model IS the static-world baseline.
        self.dec_out = nn.Sequential(nn.Conv2d(hid // 2 + 1, hid // 2, 3, padding=1),
                                     nn.ReLU(), nn.Conv2d(hid // 2, 1, 3, padding=1))
        nn.init.zeros_(self.dec_out[2].weight)
        nn.init.zeros_(self.dec_out[2].bias)
        self.base_gain = nn.Parameter(torch.ones(1))
        self.bev_shape = [cfg.ny, cfg.nx]
        self.base_logit = BASE_LOGIT
        self.register_buffer("coords_lat", _coord_planes(h, w), persistent=False)
        self.register_buffer("motion_scale",
                             torch.tensor(cfg.motion_scale, dtype=torch.float32),
                             persistent=False)
        self.group = cfg.simnorm_group

    # -- the three TD-MPC2 pieces
    def encode(self, coords: torch.Tensor, feats: torch.Tensor, batch: int) -> torch.Tensor:
        """coords (N, 4) int [b, iz, iy, ix], feats (N, in_channels) -> latent (B, C, h, w)."""
        g = self.encoder3d(coords, feats, batch)             # (B, C3, nz', h, w)
        b, c, dz, h, w = g.shape
        return simnorm(self.to_latent(g.reshape(b, c * dz, h, w)), self.group)

    def next(self, z: torch.Tensor, motion: torch.Tensor) -> torch.Tensor:
        """One step: motion (B, 5) = dx, dy, dyaw [m, m, rad] over step_dt in the frame at
        the step's start, and the mean v [m/s], w [rad/s] over it."""
        film = self.motion_mlp(motion / self.motion_scale)
        gamma, beta = film.chunk(2, dim=1)
        xy = self.coords_lat.expand(z.shape[0], -1, -1, -1)
        h = self.trans_in(torch.cat([z, xy], dim=1))
        h = F.relu(h * (1.0 + gamma[:, :, None, None]) + beta[:, :, None, None])
        return simnorm(z + self.trans_out(h), self.group)

    def bev_occupancy(self, coords: torch.Tensor, batch: int) -> torch.Tensor:
        """(B, ny, nx) float 0/1 bird's-eye occupancy (any z) of the input cells: the
        static-world baseline (torch twin of bev_from_cells)."""
        ny, nx = self.bev_shape[0], self.bev_shape[1]
        c = coords.long()
        lin = (c[:, 0] * ny + c[:, 2]) * nx + c[:, 3]
        occ = torch.zeros(batch * ny * nx, dtype=torch.float32, device=coords.device)
        return occ.index_fill(0, lin, 1.0).view(batch, ny, nx)

    def decode(self, z: torch.Tensor, occ: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Latent + current BEV occupancy (B, ny, nx) 0/1 (bev_occupancy; None = empty) ->
        (B, ny, nx) logits in the current base frame: base_gain * logit(occ) + residual."""
        xy = self.coords_lat.expand(z.shape[0], -1, -1, -1)
        h = self.dec(torch.cat([z, xy], dim=1))
        if occ is None:
            occ = torch.zeros(h.shape[0], h.shape[2], h.shape[3], dtype=h.dtype,
                              device=h.device)
        occ = occ.to(h.dtype)
        r = self.dec_out(torch.cat([h, occ[:, None]], dim=1))[:, 0]
        return self.base_gain * ((2.0 * occ - 1.0) * self.base_logit) + r

    def rollout(self, z: torch.Tensor, motions: torch.Tensor,
                occ: Optional[torch.Tensor] = None) -> List[torch.Tensor]:
        out: List[torch.Tensor] = []
        for k in range(motions.shape[1]):
            z = self.next(z, motions[:, k])
            out.append(self.decode(z, occ))
        return out

    def predict(self, coords: torch.Tensor, feats: torch.Tensor,
                motions: torch.Tensor) -> torch.Tensor:
        """(B, K, ny, nx) occupancy logits after 1..K steps of motions (B, K, 5)."""
        b = motions.shape[0]
        z = self.encode(coords, feats, b)
        occ = self.bev_occupancy(coords, b)
        return torch.stack(self.rollout(z, motions, occ), dim=1)

    def forward(self, coords: torch.Tensor, feats: torch.Tensor,
                motions: torch.Tensor) -> torch.Tensor:
        return self.predict(coords, feats, motions)

    @staticmethod
    def summary(z: torch.Tensor, cells: int = 4) -> torch.Tensor:
        """Fixed-size latent vector for the world model: (B, C * cells * cells)."""
        return F.adaptive_avg_pool2d(z, cells).flatten(1)

    # -- numpy convenience for the perception node
    @torch.no_grad()
    def predict_occupancy(self, coords: np.ndarray, counts: np.ndarray,
                          motions: np.ndarray) -> np.ndarray:
        """One robot: cells (M, 3) + counts (M,) from cells_from_voxels, motions (K, 5) ->
        (K, ny, nx) float32 occupancy probabilities in the current base frame."""
        c = torch.from_numpy(batch_coords([np.asarray(coords)]))
        f = torch.from_numpy(features(counts, self.config))
        m = torch.as_tensor(np.asarray(motions, np.float32)).reshape(1, -1, 5)
        return torch.sigmoid(self.predict(c, f, m))[0].numpy()

    # -- export
    def export_torchscript(self, path: str) -> torch.jit.ScriptModule:
        """TorchScript of forward(coords, feats, motions) -> logits. Dense backend only:
        spconv's modules do not script (see encoder_report.md); a sparse model is copied
        into a dense one with the same weights first."""
        model = self
        if self.backend != "dense":
            model = SceneModel(self.config, backend="dense")
            model.load_state_dict(self.state_dict())
        model = model.eval()
        scripted = torch.jit.script(model)
        scripted.save(path)
        return scripted


# ---------------------------------------------------------------------- artifacts
def save_artifact(model: SceneModel, out_dir: str,
                  extra: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Write <out_dir>/encoder.pt (state_dict) and encoder.json (version, config with the
    normalisation, sha256 of encoder.pt, `extra` such as training info and metrics)."""
    os.makedirs(out_dir, exist_ok=True)
    wpath = os.path.join(out_dir, WEIGHTS_NAME)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save(state, wpath)
    meta = {"artifact_version": ARTIFACT_VERSION, "weights": WEIGHTS_NAME,
            "sha256": sha256_file(wpath), "config": model.config.to_dict(),
            "torch_version": torch.__version__}
    meta.update(extra or {})
    with open(os.path.join(out_dir, META_NAME), "w") as f:
        json.dump(meta, f, indent=2, sort_keys=True)
    return meta


def load_artifact(out_dir: str, backend: str = "auto") -> Tuple[SceneModel, Dict[str, Any]]:
    """Load and verify an artifact; raises ArtifactError on a missing/corrupted file."""
    mpath = os.path.join(out_dir, META_NAME)
    try:
        with open(mpath) as f:
            meta = json.load(f)
    except (OSError, ValueError) as e:
        raise ArtifactError("cannot read encoder metadata %s: %s" % (mpath, e)) from e
    if meta.get("artifact_version") != ARTIFACT_VERSION:
        raise ArtifactError("encoder artifact version %r, this code reads %d"
                            % (meta.get("artifact_version"), ARTIFACT_VERSION))
    wpath = os.path.join(out_dir, meta.get("weights", WEIGHTS_NAME))
    if not os.path.isfile(wpath):
        raise ArtifactError("encoder weights %s missing" % wpath)
    digest = sha256_file(wpath)
    if digest != meta.get("sha256"):
        raise ArtifactError("encoder weights %s corrupted: sha256 %s, expected %s"
                            % (wpath, digest, meta.get("sha256")))
    model = SceneModel(EncoderConfig.from_dict(meta["config"]), backend=backend)
    try:
        state = torch.load(wpath, map_location="cpu", weights_only=True)
    except TypeError:  # torch < 1.13 has no weights_only
        state = torch.load(wpath, map_location="cpu")
    model.load_state_dict(state)
    return model.eval(), meta
