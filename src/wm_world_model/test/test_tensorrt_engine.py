"""The TensorRT path cannot run here (no tensorrt, no GPU): check it says so clearly, after
the artifact's own checks, instead of failing somewhere inside TensorRT."""
from __future__ import annotations

import os

import pytest

from wm_world_model import tensorrt_engine

SHIPPED = os.path.join(os.path.dirname(__file__), "..", "models", "worldmodel-1.0.0")


def test_without_tensorrt_the_builder_explains_why(capsys):
    # CI never has a GPU: either tensorrt is missing or torch has no CUDA device.
    assert tensorrt_engine.main(["--artifact", SHIPPED, "--batch", "64"]) == 2
    err = capsys.readouterr().err
    assert "tensorrt is not importable" in err or "no CUDA device" in err
    with pytest.raises(tensorrt_engine.TensorRTUnavailable):
        tensorrt_engine.build_engine(os.path.join(SHIPPED, "model.onnx"), 64, 10, 2)


def test_the_onnx_graph_uses_only_what_tensorrt_8_5_parses():
    # TensorRT 8.5's ONNX parser: opsets 7-17, and these are the ops the rollout needs.
    import onnx

    m = onnx.load(os.path.join(SHIPPED, "model.onnx"))
    assert m.opset_import[0].version <= 17
    ops = {n.op_type for n in m.graph.node}
    supported = {"Add", "Sub", "Mul", "Div", "Neg", "Reciprocal", "Cos", "Sin", "Exp", "Tanh",
                 "Sigmoid",
                 "Gemm", "MatMul", "Concat", "Slice", "Gather", "Unsqueeze", "Squeeze",
                 "Reshape", "Clip", "Max", "Min", "Constant", "Shape", "Expand", "Cast",
                 "Identity", "ConstantOfShape", "Where", "Equal", "Less", "Greater"}
    assert ops <= supported, "ops TensorRT 8.5 may not take: %s" % sorted(ops - supported)
    assert [i.name for i in m.graph.input] == list(tensorrt_engine.INPUTS)
    assert [o.name for o in m.graph.output] == [tensorrt_engine.OUTPUT]
