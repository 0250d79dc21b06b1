"""``nnlearn report``: an HTML report of a model on a dataset (``nnlearn.report``)."""

from __future__ import annotations

from .common import DATA_HELP, check_fit, emit, evaluation_data, import_report, load_model_file

SUMMARY = "write an HTML report of a model on a dataset"
EXAMPLES = """\
  nnlearn report nnlearn-model.npz report/
  nnlearn report ex4weights.mat --data digits20 report/"""


def add_arguments(p):
    p.add_argument("model", help="nnlearn model (.npz) or Octave weights (.mat)")
    p.add_argument("dir", metavar="DIR", help="directory to write index.html and its figures into")
    p.add_argument("--data", metavar="NAME|FILE", help=f"{DATA_HELP} (default: as for evaluate)")
    p.add_argument("--force", action="store_true", help="overwrite an existing report")


def run(args):
    model = load_model_file(args.model)
    X, y, data = evaluation_data(args, model)
    check_fit(model, X, y, args.model, data)
    write_report = import_report().write_report

    settings = {
        "model": args.model,
        "data": data,
        "layer_sizes": list(model.layer_sizes),
        "activation": model.network.activation,
        "output": model.network.output,
        "lambda": model.lam,
    }
    settings.update({k: v for k, v in model.history.items() if k in ("optimizer", "max_iter", "seed", "dtype")})
    path = write_report(model, args.dir, X, y, settings=settings, overwrite=args.force)
    emit(args, {"report": str(path), "model": args.model, "data": data, "m": len(y)}, f"report written to {path}")
    return 0
