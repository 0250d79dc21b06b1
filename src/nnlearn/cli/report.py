"""``nnlearn report``: an HTML report of a model on a dataset (``nnlearn.reporting._report``).

Inputs are checked before the report's folder: an existing report needs ``--force``, a
device or FIFO under a report file's name is refused, and the folder must take files.
"""

from __future__ import annotations

from ._common import (
    DATA_HELP,
    MODEL_HELP,
    check_fit,
    data_role,
    emit,
    evaluation_data,
    import_report,
    load_model_file,
    note_saved,
    refuse_existing,
    refuse_overwriting_inputs,
    writing,
)

SUMMARY = "write an HTML report of a model on a dataset"
EXAMPLES = """\
  nnlearn report nnlearn-model.npz report/
  nnlearn report pretrained --data digits20 report/"""


def add_arguments(p):
    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("dir", metavar="DIR", help="directory to write index.html and its figures into")
    p.add_argument("--data", metavar="NAME|FILE", help=f"{DATA_HELP} (default: as for evaluate)")
    p.add_argument("--force", action="store_true", help="overwrite an existing report")


def run(args):
    report = import_report()
    inputs = [("MODEL", args.model), ("--data", args.data)]
    refuse_overwriting_inputs(inputs, [("DIR", path) for path in report.report_files(args.dir)])
    model = load_model_file(args.model)
    X, y, data = evaluation_data(args, model)
    role, note = data_role(args, model)
    check_fit(model, X, y, args.model, data)
    clashes = set(report.report_clashes(args.dir))
    for path in report.report_files(args.dir):
        refuse_existing(path, args.force or path not in clashes, option="DIR")

    settings = {
        "model": args.model,
        "data": data if note is None else f"{data} ({note})",
        "layer_sizes": list(model.layer_sizes),
        "activation": model.network.activation,
        "output": model.network.output,
        "lambda": model.lam,
    }
    settings.update({k: v for k, v in model.history.items() if k in ("optimizer", "max_iter", "seed", "dtype")})
    page_role = {"overlap": "other"}.get(role, role)  # the page's words: test, training or evaluation
    with writing(f"the report into {args.dir}"):
        path = report.write_report(model, args.dir, X, y, settings=settings, overwrite=args.force, data_role=page_role)
    note_saved(args, "the report", path)
    result = {"report": str(path), "model": args.model, "data": data, "data_role": role, "m": len(y)}
    emit(args, result, f"report written to {path}")
    return 0
