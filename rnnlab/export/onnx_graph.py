"""A trained model as an ONNX graph of ONNX's own RNN / LSTM / GRU operators (opset 17).

Graph inputs: ``x`` float32 ``[T, N, I]`` (time-major, T and N dynamic) and ``lengths`` int32
``[N]`` (the operators' ``sequence_lens``). Output ``y``: what :meth:`TrainedModel.predict`
returns, ``[N, O]`` for target "last", ``[T, N, O]`` for "every".

One operator node per layer, bidirectional layers with ``direction = "bidirectional"``, and
``layout = 0`` (time-major; onnxruntime's CPU provider refuses ``layout = 1``). PyTorch's gate
blocks are reordered to ONNX's: LSTM i, f, g, o -> i, o, f, c; GRU r, z, n -> z, r, h with
``linear_before_reset = 1`` (PyTorch applies the reset gate after the hidden-to-hidden product).
For target "last" the head reads the top layer's ``Y_h``: each sequence's final state at its own
length, ``[h_n forward ; h_n reverse]`` when bidirectional, as rnnlab's head does.
"""

from __future__ import annotations

import numpy as np

from ..errors import RnnlabError
from ..nn.model import param_name

OPSET = 17
IR_VERSION = 8  # read by every onnxruntime since 1.10
OPERATORS = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}
# rows of ONNX's gate blocks, as indices of PyTorch's blocks
GATE_ORDER = {"rnn": [0], "lstm": [0, 3, 1, 2], "gru": [1, 0, 2]}
ACTIVATIONS = {"tanh": "Tanh", "relu": "Relu"}


def exportable(cell: str, nonlinearity: str) -> None:
    """Raise RnnlabError naming what ONNX's operators cannot express."""
    if cell not in OPERATORS:
        raise RnnlabError(
            f"cell {cell!r} has no ONNX operator; ONNX export covers the cells "
            f"{', '.join(OPERATORS)}; export this model with --format safetensors "
            f"(every cell's parameters, under their names)"
        )
    if cell == "rnn" and nonlinearity not in ACTIVATIONS:
        raise RnnlabError(
            f"rnn nonlinearity {nonlinearity!r} has no ONNX activation "
            f"(valid: {', '.join(ACTIVATIONS)})"
        )


def reorder(a: np.ndarray, cell: str, H: int) -> np.ndarray:
    """PyTorch's stacked gate blocks ``[G*H, ...]`` in ONNX's order."""
    return np.concatenate([a[g * H : (g + 1) * H] for g in GATE_ORDER[cell]], axis=0)


def layer_tensors(params, cell: str, layer: int, D: int, H: int):
    """``W [D, G*H, I]``, ``R [D, G*H, H]``, ``B [D, 2*G*H]`` of one layer, float32."""
    W, R, B = [], [], []
    for reverse in (False, True)[:D]:
        p = {
            key: params[param_name(key, layer, reverse)]
            for key in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        }
        W.append(reorder(p["weight_ih"], cell, H))
        R.append(reorder(p["weight_hh"], cell, H))
        B.append(np.concatenate([reorder(p["bias_ih"], cell, H), reorder(p["bias_hh"], cell, H)]))
    return (np.stack(a).astype(np.float32) for a in (W, R, B))


def build_onnx(
    params: dict[str, np.ndarray],
    *,
    cell: str,
    layers: int,
    hidden_size: int,
    bidirectional: bool,
    nonlinearity: str,
    target: str,
    name: str = "rnnlab",
):
    """The ``onnx.ModelProto`` of a model with these parameters (PyTorch names)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    exportable(cell, nonlinearity)
    H, D = hidden_size, 2 if bidirectional else 1
    inputs = int(params[param_name("weight_ih", 0)].shape[1])
    outputs = int(params[param_name("bias")].shape[0])
    nodes, inits = [], []

    def const(label: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(value, label))
        return label

    flat = const("shape_flat", np.array([0, 0, -1], dtype=np.int64))
    h = "x"
    for k in range(layers):
        W, R, B = layer_tensors(params, cell, k, D, H)
        attrs = {
            "hidden_size": H,
            "direction": "bidirectional" if D == 2 else "forward",
            "layout": 0,
        }
        if cell == "rnn":
            attrs["activations"] = [ACTIVATIONS[nonlinearity]] * D
        if cell == "gru":
            attrs["linear_before_reset"] = 1
        y, y_h = f"Y_l{k}", f"Y_h_l{k}"
        nodes.append(
            helper.make_node(
                OPERATORS[cell],
                [h, const(f"W_l{k}", W), const(f"R_l{k}", R), const(f"B_l{k}", B), "lengths"],
                [y, y_h],
                name=f"{cell}_l{k}",
                **attrs,
            )
        )
        # Y [T, D, N, H] -> [T, N, D*H]: per-step outputs [forward ; reverse], the next input
        nodes.append(helper.make_node("Transpose", [y], [f"{y}_tnd"], perm=[0, 2, 1, 3]))
        nodes.append(helper.make_node("Reshape", [f"{y}_tnd", flat], [f"h_l{k}"]))
        h = f"h_l{k}"
    if target == "every":
        top = h
    else:  # Y_h [D, N, H] -> [N, D*H]: [h_n forward ; h_n reverse]
        nodes.append(helper.make_node("Transpose", [y_h], ["Y_h_ndh"], perm=[1, 0, 2]))
        nodes.append(
            helper.make_node(
                "Reshape",
                ["Y_h_ndh", const("shape_nd", np.array([0, -1], dtype=np.int64))],
                ["top"],
            )
        )
        top = "top"
    weight = params[param_name("weight")].T.astype(np.float32)
    nodes.append(helper.make_node("MatMul", [top, const("head_weight_t", weight)], ["head_mm"]))
    nodes.append(
        helper.make_node(
            "Add",
            ["head_mm", const("head_bias", params[param_name("bias")].astype(np.float32))],
            ["y"],
        )
    )
    y_shape = ["N", outputs] if target == "last" else ["T", "N", outputs]
    graph = helper.make_graph(
        nodes,
        name,
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["T", "N", inputs]),
            helper.make_tensor_value_info("lengths", TensorProto.INT32, ["N"]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)],
        initializer=inits,
    )
    model = helper.make_model(
        graph, producer_name="rnnlab", opset_imports=[helper.make_opsetid("", OPSET)]
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    return model
