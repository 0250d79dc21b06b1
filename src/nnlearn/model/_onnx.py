"""A model as an ONNX graph: to run where nnlearn is not (a browser, a phone, a service).

:func:`to_onnx` writes the network's feedforward pass with the ``onnx`` package (the
``onnx`` extra): for each layer a ``Gemm`` (the weights and the bias column of its theta),
then the activation's operators, as its registry entry gives them (``Activation.onnx``;
``Output.onnx`` for the class probabilities). Its inputs and outputs:

* ``input``: shape ``(N, n_inputs)``, float32 or float64, one example per row, laid out as
  the training data were (a 20x20 digit unrolled column-major, as the course's);
* ``label``: shape ``(N,)``, the class of the largest logit (the lowest index among equal
  ones, as :meth:`nnlearn.model.Model.predict` picks it), int64 or string as the classes are;
* ``probabilities``: shape ``(N, K)``, :meth:`~nnlearn.model.Model.predict_proba`'s, in
  the order of the classes.

The graph's metadata say what produced it and how to feed it: the nnlearn version, the
layer sizes and kinds, the classes, the input layout, the images' framing and the data
the model was trained on.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np

from .._version import __version__
from ..core import ACTIVATIONS, OUTPUTS
from ..errors import ParameterError
from ..persist._atomic import atomic_write

__all__ = ["to_onnx", "onnx_bytes", "onnx_module", "OPSET", "DTYPES"]

#: The ONNX operator set the graphs use (Softmax over the last axis, Softplus, Gemm).
OPSET = 17
#: The IR version written: 9, which onnxruntime 1.15 and later read.
IR_VERSION = 9
DTYPES = ("float32", "float64")


def onnx_module():
    """The onnx package, or ParameterError saying which extra brings it."""
    try:
        import onnx
    except ImportError:
        raise ParameterError('ONNX export needs the onnx package: pip install "nnlearn[onnx]"') from None
    return onnx


def _form(entry, kind: str, name: str) -> tuple[str, ...]:
    if entry.onnx is None:
        raise ParameterError(
            f"the {kind} {name!r} has no ONNX form, so a model of it cannot be exported; "
            f"register it with onnx=(operator names) to export it"
        )
    return entry.onnx


def onnx_bytes(model, dtype: str = "float32") -> bytes:
    """The serialised ONNX model of ``model`` (an :class:`nnlearn.model.Model`), computing in ``dtype``."""
    onnx = onnx_module()
    from onnx import TensorProto, helper, numpy_helper

    if dtype not in DTYPES:
        raise ParameterError(f"dtype {dtype!r}: ONNX export computes in {' or '.join(DTYPES)}")
    network = model.network
    hidden = _form(ACTIVATIONS[network.activation], "activation", network.activation)
    proba = _form(OUTPUTS[network.output], "output", network.output)
    elem = TensorProto.FLOAT if dtype == "float32" else TensorProto.DOUBLE
    nodes, weights = [], []
    current = "input"
    for layer, theta in enumerate(model.thetas, start=1):
        theta = np.asarray(theta, dtype=dtype)
        weights += [
            numpy_helper.from_array(np.ascontiguousarray(theta[:, 1:]), f"W{layer}"),
            numpy_helper.from_array(np.ascontiguousarray(theta[:, 0]), f"b{layer}"),
        ]
        z = "logits" if layer == len(model.thetas) else f"z{layer}"
        nodes.append(helper.make_node("Gemm", [current, f"W{layer}", f"b{layer}"], [z], transB=1, name=f"layer{layer}"))
        current = z
        if z != "logits":
            current = _chain(helper, nodes, weights, hidden, z, f"a{layer}", f"g{layer}", dtype)
    _chain(helper, nodes, weights, proba, "logits", "probabilities", "proba", dtype, softmax_axis=1)
    nodes.append(helper.make_node("ArgMax", ["logits"], ["index"], axis=1, keepdims=0, name="largest_logit"))
    classes = np.asarray(model.classes)
    if classes.dtype.kind in "iub":
        weights.append(numpy_helper.from_array(classes.astype(np.int64), "classes"))
        label_type = TensorProto.INT64
    else:
        texts = [str(c).encode() for c in classes]
        weights.append(helper.make_tensor("classes", TensorProto.STRING, [len(texts)], texts))  # type: ignore[arg-type]
        label_type = TensorProto.STRING
    nodes.append(helper.make_node("Gather", ["classes", "index"], ["label"], axis=0, name="label_of_index"))
    n_in, n_out = model.layer_sizes[0], model.layer_sizes[-1]
    graph = helper.make_graph(
        nodes,
        "nnlearn",
        [helper.make_tensor_value_info("input", elem, ["N", n_in])],
        [
            helper.make_tensor_value_info("label", label_type, ["N"]),
            helper.make_tensor_value_info("probabilities", elem, ["N", n_out]),
        ],
        initializer=weights,
    )
    onnx_model = helper.make_model(
        graph,
        producer_name="nnlearn",
        producer_version=__version__,
        opset_imports=[helper.make_opsetid("", OPSET)],
        doc_string=f"nnlearn {model.network.describe()}: input -> label, probabilities",
    )
    onnx_model.ir_version = IR_VERSION
    helper.set_model_props(onnx_model, _metadata(model, dtype))
    onnx.checker.check_model(onnx_model)
    buffer = io.BytesIO()
    onnx.save_model(onnx_model, buffer)
    return buffer.getvalue()


def _chain(helper, nodes, weights, ops, source, target, prefix, dtype, softmax_axis=None):
    """The operators ``ops`` applied in turn from ``source``; the last writes ``target``."""
    current = source
    for k, op in enumerate(ops):
        out = target if k == len(ops) - 1 else f"{prefix}_{k}"
        name = f"{prefix}_{op.lower()}_{k}"
        if op == "Softplus" and dtype == "float64":
            _softplus(helper, nodes, weights, current, out, name)
        else:
            attributes = {"axis": softmax_axis} if op in ("Softmax", "LogSoftmax") and softmax_axis is not None else {}
            nodes.append(helper.make_node(op, [current], [out], name=name, **attributes))
        current = out
    return current


def _softplus(helper, nodes, weights, x, out, name):
    """softplus(x) = max(x, 0) + log(1 + exp(-|x|)), in operators onnxruntime has for
    float64 (it has Softplus for float32 only); finite for every finite x."""
    from onnx import numpy_helper

    one = f"{name}_one"
    weights.append(numpy_helper.from_array(np.array(1.0), one))
    steps = [
        ("Abs", [x], "abs"),
        ("Neg", ["abs"], "neg"),
        ("Exp", ["neg"], "exp"),
        ("Add", ["exp", one], "onemore"),
        ("Log", ["onemore"], "log"),
        ("Relu", [x], "relu"),
    ]
    for op, inputs, result in steps:
        inputs = [i if i in (x, one) else f"{name}_{i}" for i in inputs]
        nodes.append(helper.make_node(op, inputs, [f"{name}_{result}"], name=f"{name}_{result}"))
    nodes.append(helper.make_node("Add", [f"{name}_relu", f"{name}_log"], [out], name=f"{name}_sum"))


def _metadata(model, dtype) -> dict[str, str]:
    from ..datasets._builtin import image_side
    from ..datasets._images import model_framing

    n = model.layer_sizes[0]
    try:
        side = image_side(n)
    except Exception:  # not a square number of inputs
        side = None
    layout = (
        f"a {side}x{side} image unrolled column-major (Fortran order), ink bright (near 1) on a dark (0) ground"
        if side is not None
        else f"{n} features, as the training data's columns"
    )
    history = model.history
    props = {
        "nnlearn_version": __version__,
        "layer_sizes": json.dumps(list(model.layer_sizes)),
        "activation": model.network.activation,
        "output": model.network.output,
        "classes": json.dumps([c.item() if hasattr(c, "item") else c for c in model.classes]),
        "dtype": dtype,
        "input_layout": layout,
        "framing": model_framing(history) if side is not None else "none",
        "trained_on": str(history.get("data") or history.get("source") or "unknown"),
    }
    return props


def to_onnx(model, path: str | os.PathLike, dtype: str = "float32", overwrite: bool = False) -> Path:
    """Write ``model`` to ``path`` as ONNX (see the module's docstring), atomically;
    refuse to replace a file unless ``overwrite``."""
    data = onnx_bytes(model, dtype)
    return atomic_write(path, lambda f: f.write(data), overwrite=overwrite)
