"""WorldModel: SE(2) equivariance, bounded residual, the context's columns, TorchScript and
ONNX export, on models whose residual is far from zero (random weights, as after training)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from wm_world_model.artifact import export_onnx
from wm_world_model.kinematics import calibrated_rollout
from wm_world_model.model import WorldModel, WorldModelConfig, make_context


def _inputs(batch: int, horizon: int = 10, seed: int = 0, context_dim: int = 2):
    """Random states and commands inside the robot's limits, payload known for half."""
    g = torch.Generator().manual_seed(seed)
    u = lambda lo, hi, *shape: lo + (hi - lo) * torch.rand(*shape, generator=g)  # noqa: E731
    state = torch.stack([u(-5, 5, batch), u(-5, 5, batch), u(-math.pi, math.pi, batch),
                         u(-0.3, 1.2, batch), u(-1.5, 1.5, batch)], dim=1)
    actions = torch.stack([u(-0.2, 1.0, batch, horizon), u(-1.5, 1.5, batch, horizon)], dim=2)
    ctx = torch.zeros(batch, context_dim)
    ctx[:, 0] = u(0, 150, batch)
    ctx[:, 1] = (torch.arange(batch) % 2).float()
    if context_dim > 2:
        ctx[:, 2:] = torch.randn(batch, context_dim - 2, generator=g)
    return state, actions, ctx


def _transform(states: torch.Tensor, theta: float, tx: float, ty: float) -> torch.Tensor:
    """Apply the rigid motion (rotation theta about the origin, then (tx, ty)) to states
    [..., 5]; velocities are body-frame and stay."""
    c, s = math.cos(theta), math.sin(theta)
    out = states.clone()
    out[..., 0] = c * states[..., 0] - s * states[..., 1] + tx
    out[..., 1] = s * states[..., 0] + c * states[..., 1] + ty
    out[..., 2] = states[..., 2] + theta
    return out


def test_trained_like_model_has_a_real_correction(trained_like):
    # Guards the tests below: they are only meaningful if the residual is far from zero.
    m = trained_like()
    state, actions, ctx = _inputs(256)
    with torch.no_grad():
        r = m.correction(state, actions[:, 0], ctx)
    assert float(r.abs().mean()) > 0.1 * float(m.residual_bound.min())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rollout_is_se2_equivariant(trained_like, seed):
    m = trained_like(seed=seed)
    state, actions, ctx = _inputs(128, seed=seed)
    rng = np.random.default_rng(seed)
    theta, tx, ty = rng.uniform(-math.pi, math.pi), rng.uniform(-8, 8), rng.uniform(-8, 8)
    with torch.no_grad():
        ref = m.rollout(state, actions, ctx)
        moved = m.rollout(_transform(state, theta, tx, ty), actions, ctx)
    expected = _transform(ref, theta, tx, ty)
    torch.testing.assert_close(moved[..., :3], expected[..., :3], atol=1e-4, rtol=0)
    # Velocities are the same (not merely close): nothing pose-dependent reaches them.
    torch.testing.assert_close(moved[..., 3:], ref[..., 3:], atol=1e-6, rtol=0)
    # Sanity: the rollout moved, so the comparison is not between constants.
    assert float((ref[:, -1, :2] - ref[:, 0, :2]).norm(dim=1).mean()) > 0.1


def test_residual_is_bounded_in_the_body_frame_with_huge_weights(trained_like):
    m = trained_like(std=100.0, seed=3)
    state, actions, ctx = _inputs(2048, horizon=1, seed=3)
    bound = m.residual_bound
    with torch.no_grad():
        nxt = m.next(state, actions[:, 0], ctx)
        base = m.kinematic_next(state, actions[:, 0])
        r = m.correction(state, actions[:, 0], ctx)
    assert torch.isfinite(nxt).all()
    d = nxt - base
    c, s = torch.cos(state[:, 2]), torch.sin(state[:, 2])
    body = torch.stack([c * d[:, 0] + s * d[:, 1], -s * d[:, 0] + c * d[:, 1], d[:, 2],
                        d[:, 3], d[:, 4]], dim=1)
    assert (body.abs() <= bound + 1e-5).all()
    # The huge weights do saturate the correction: the bound is reached, not merely respected.
    assert (r.abs().amax(0) > 0.99 * bound).all()
    assert (nxt[:, 3].abs() <= m.config.v_abs_max).all()
    assert (nxt[:, 4].abs() <= m.config.w_abs_max).all()


def test_velocities_clamped_even_for_absurd_commands(trained_like):
    m = trained_like(std=100.0, seed=4)
    state, actions, ctx = _inputs(512, seed=4)
    actions = actions * 50.0            # 50 m/s, 75 rad/s commands
    state[:, 3:] *= 10.0
    ctx[:, 0] = 1e5                     # an absurd payload
    with torch.no_grad():
        out = m.rollout(state, actions, ctx)
    assert torch.isfinite(out).all()
    assert (out[:, 1:, 3].abs() <= m.config.v_abs_max).all()
    assert (out[:, 1:, 4].abs() <= m.config.w_abs_max).all()


def test_zero_initialised_model_is_the_calibrated_baseline(calibration):
    m = WorldModel(WorldModelConfig(), calibration).eval()
    m.set_normalisation(torch.full((6,), 0.3), torch.full((6,), 2.0))
    state, actions, ctx = _inputs(64)
    with torch.no_grad():
        out = m.rollout(state, actions, ctx)
        ref = calibrated_rollout(state, actions, m.calibration, m.dt)
    assert torch.equal(out, ref)
    # And the calibration is the one given, not the identity.
    assert m.calibration_dict() == pytest.approx(calibration, rel=1e-6)


def test_unknown_payload_ignores_the_payload_value(trained_like):
    m = trained_like()
    state, actions, _ = _inputs(64)
    with torch.no_grad():
        outs = [m.rollout(state, actions, torch.tensor([[p, 0.0]]).repeat(64, 1))
                for p in (0.0, 60.0, 150.0)]
        known = [m.rollout(state, actions, make_context(64, p)) for p in (0.0, 150.0)]
    assert torch.equal(outs[0], outs[1]) and torch.equal(outs[0], outs[2])
    # A known payload does change the prediction (the model uses the column at all).
    assert float((known[0] - known[1]).abs().max()) > 1e-3
    # make_context(batch) without a payload is the "unknown" context.
    with torch.no_grad():
        assert torch.equal(m.rollout(state, actions, make_context(64)), outs[0])


def test_use_payload_false_ignores_the_payload(trained_like):
    m = trained_like(WorldModelConfig(use_payload=False))
    state, actions, _ = _inputs(64)
    with torch.no_grad():
        outs = [m.rollout(state, actions, make_context(64, p)) for p in (None, 0.0, 150.0)]
    assert torch.equal(outs[0], outs[1]) and torch.equal(outs[0], outs[2])


def test_latent_changes_the_output_only_when_it_changes(trained_like):
    k = 4
    m = trained_like(WorldModelConfig(latent_dim=k))
    state, actions, _ = _inputs(32, context_dim=2 + k)
    g = torch.Generator().manual_seed(5)
    z1, z2 = torch.randn(k, generator=g), torch.randn(k, generator=g)
    with torch.no_grad():
        a = m.rollout(state, actions, make_context(32, 50.0, z1, k))
        a2 = m.rollout(state, actions, make_context(32, 50.0, z1.clone(), k))
        b = m.rollout(state, actions, make_context(32, 50.0, z2, k))
        one_a = m.next(state, actions[:, 0], make_context(32, 50.0, z1, k))
        one_b = m.next(state, actions[:, 0], make_context(32, 50.0, z2, k))
    assert torch.equal(a, a2)
    assert torch.equal(a[:, 0], b[:, 0])                 # the start state is the input
    assert float((a[:, 1:] - b[:, 1:]).abs().max()) > 1e-3
    assert float((one_a - one_b).abs().max()) > 1e-4
    # The context is (B, 2 + latent_dim), latent after payload_kg and payload_known.
    ctx = make_context(3, 20.0, z1, k)
    assert ctx.shape == (3, 2 + k)
    assert torch.equal(ctx[:, 2:], z1.expand(3, k)) and (ctx[:, 1] == 1).all()


def test_config_roundtrip_and_unknown_keys():
    cfg = WorldModelConfig(hidden=16, latent_dim=3, residual_bound=(0.1, 0.1, 0.2, 0.5, 1.0))
    assert WorldModelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown"):
        WorldModelConfig.from_dict(dict(cfg.to_dict(), hiden=8))
    with pytest.raises(ValueError):
        WorldModelConfig(residual_bound=(0.1, 0.1, 0.0, 0.5, 1.0))


@pytest.mark.parametrize("latent_dim", [0, 3])
def test_torchscript_matches_eager(trained_like, latent_dim):
    m = trained_like(WorldModelConfig(latent_dim=latent_dim))
    scripted = torch.jit.script(m)
    state, actions, ctx = _inputs(100, context_dim=2 + latent_dim)
    with torch.no_grad():
        eager = m.rollout(state, actions, ctx)
        torch.testing.assert_close(scripted.rollout(state, actions, ctx), eager,
                                   atol=1e-6, rtol=0)
        torch.testing.assert_close(scripted(state, actions, ctx), eager, atol=1e-6, rtol=0)
        torch.testing.assert_close(scripted.next(state, actions[:, 0], ctx),
                                   m.next(state, actions[:, 0], ctx), atol=1e-6, rtol=0)


def test_onnx_export_runs_in_onnxruntime_at_other_batch_sizes(trained_like, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    m = trained_like(seed=6)
    path = str(tmp_path / "model.onnx")
    export_onnx(m, path, batch=64)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["state", "actions", "context"]
    for batch in (1, 7, 300):
        state, actions, ctx = _inputs(batch, seed=batch)
        (got,) = sess.run(None, {"state": state.numpy(), "actions": actions.numpy(),
                                 "context": ctx.numpy()})
        with torch.no_grad():
            ref = m.rollout(state, actions, ctx).numpy()
        assert got.shape == (batch, 11, 5)
        np.testing.assert_allclose(got, ref, atol=1e-4, rtol=0)
