"""``nnlearn export``: a model as an ONNX file (:mod:`nnlearn.model._onnx`), to run without nnlearn.

The model is read and the output checked before anything is written: an existing OUT
needs ``--force``, and OUT may not be the model itself.
"""

from __future__ import annotations

from ._common import MODEL_HELP, emit, load_model_file, note_saved, refuse_existing, refuse_overwriting_inputs, writing

SUMMARY = "export a model to ONNX, to run it where nnlearn is not (onnxruntime, a browser, a phone)"
EXAMPLES = """\
  nnlearn export nnlearn-model.npz model.onnx
  nnlearn export pretrained ex4.onnx --dtype float64
  python -c "import onnxruntime as ort; print(ort.InferenceSession('model.onnx').get_inputs()[0])\""""


def add_arguments(p):
    p.add_argument("model", help=MODEL_HELP)
    p.add_argument(
        "out", metavar="OUT", help="the ONNX file to write (input 'input'; outputs 'label', 'probabilities')"
    )
    p.add_argument(
        "--dtype",
        choices=("float32", "float64"),
        default="float32",
        help="what the graph computes in and takes as input (default: float32)",
    )
    p.add_argument("--force", action="store_true", help="overwrite OUT if it exists")


def run(args):
    from ..model._onnx import onnx_module, to_onnx

    onnx_module()  # the extra's message before any work
    refuse_overwriting_inputs([("MODEL", args.model)], [("OUT", args.out)])
    refuse_existing(args.out, args.force, option="OUT")
    model = load_model_file(args.model)
    with writing(f"the ONNX model to {args.out}"):
        path = to_onnx(model, args.out, dtype=args.dtype, overwrite=args.force)
    note_saved(args, "the ONNX model", path)
    size = path.stat().st_size
    result = {"onnx": str(path), "model": args.model, "dtype": args.dtype, "bytes": size}
    emit(args, result, f"ONNX model ({args.dtype}, {size:,} bytes) written to {path}")
    return 0
