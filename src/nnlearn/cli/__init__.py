"""The ``nnlearn`` command line: train, evaluate, predict, check and reproduce the course.

One module per verb (:data:`VERBS`, in the order ``nnlearn --help`` lists them), each with
``SUMMARY`` (one line), ``EXAMPLES`` (the help's epilog), ``add_arguments(parser)`` and
``run(args) -> int``, the exit status (:data:`EXIT_STATUSES`). Every mistake a user can
make (a missing or malformed file, weights that do not fit the data, an option out of
range, an empty path, an output that is one of the inputs) surfaces as an
:class:`~nnlearn.errors.NNLearnError` or OSError, which :func:`main` prints as one line on
stderr with exit status 2, never a traceback; argparse's own usage errors read the same,
``nnlearn VERB: error: ...``. A failure once the work began (an output that cannot be
written, stdout among them) is :class:`~nnlearn.cli._streams.WorkFailed`: one line saying
what was saved where, status 1. With ``--json`` a verb prints exactly one JSON object on
stdout and nothing else there. A closed or broken stderr ends no verb early: messages to
a stream that is gone are dropped (:func:`nnlearn.cli._monitor.say`); nor does a reader of
stdout that went away (``| head -1``): the rest of the output is dropped quietly, and the
verb ends with its own status. Warnings read ``nnlearn VERB: warning: ...``.
"""

from __future__ import annotations

import argparse
import sys

from .._version import __version__
from ..errors import NNLearnError, ParameterError
from ..persist._atomic import OutputExistsError
from . import cost, evaluate, export, gradcheck, predict, report, reproduce, serve, shard, show, train, tune
from ._monitor import say
from ._streams import (
    GuardedStdout,
    StdoutFailed,
    WorkFailed,
    one_line_warnings,
    reserve_standard_descriptors,
)

__all__ = ["main", "build_parser", "VERBS"]

#: The verbs' modules; a verb is named after its module.
VERBS = (train, evaluate, predict, cost, gradcheck, reproduce, report, show, export, shard, tune, serve)


#: The exit statuses of every verb (docs/cli.md has the same table).
EXIT_STATUSES = {
    0: "success; also when the reader of stdout went away (`nnlearn train | head -1`), with everything saved",
    1: "a failure while working (stdout or a file could not be written, a lost cluster; gradcheck and "
    "reproduce: a check failed), said in one line with what was saved where",
    2: "a mistake in the input or options, found before any work",
    129: "stopped by SIGHUP (a closed terminal), as SIGTERM stops train",
    130: "interrupted by Ctrl-C (SIGINT)",
    143: "stopped by SIGTERM",
}


def verb_name(module):
    return module.__name__.rpartition(".")[2]


class _Parser(argparse.ArgumentParser):
    """argparse with its usage errors on one line; the exit status stays argparse's 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser():
    """The parser of the whole command line; ``parser.verbs`` maps each verb to its own parser."""
    parser = _Parser(
        prog="nnlearn",
        description="Neural-network learning as the classic course teaches it.",
        epilog="example:\n  nnlearn train\n\nRun 'nnlearn VERB --help' for a verb's options and examples.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"nnlearn {__version__}")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    parser.verbs = {}
    for module in VERBS:
        summary = module.SUMMARY
        p = verbs.add_parser(
            verb_name(module),
            help=summary,
            description=summary[0].upper() + summary[1:] + ".",
            epilog=f"example:\n{module.EXAMPLES}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(p)
        p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
        p.set_defaults(run=module.run)
        parser.verbs[verb_name(module)] = p
    return parser


def _message(exc):
    """One line for an error: its message, with a hint where one helps."""
    if isinstance(exc, OSError) and not isinstance(exc, NNLearnError) and exc.strerror:
        text = f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    else:
        text = str(exc) or type(exc).__name__
    if isinstance(exc, OutputExistsError) and "--force" not in text:
        text += " (pass --force to overwrite)"
    return " ".join(text.split())


def main(argv=None):
    """Run the command line; return the exit status (:data:`EXIT_STATUSES`).

    argparse's own errors (an unknown verb or option, a value that is not a number) and
    ``--help`` / ``--version`` end in ``SystemExit``, with status 2 and 0.
    """
    reserve_standard_descriptors()
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        # Left over by the verb's parser: its error, so that it reads "nnlearn VERB: error:".
        parser.verbs[args.verb].error(f"unrecognized arguments: {' '.join(unknown)}")
    prefix = f"nnlearn {args.verb}"
    args.saved = []  # what the verb wrote, in words (note_saved), for a failure's message
    stdout = sys.stdout
    try:
        with one_line_warnings(prefix):
            sys.stdout = GuardedStdout(stdout)
            try:
                refuse_empty_paths(parser.verbs[args.verb], args)
                status = args.run(args)
                sys.stdout.flush()  # here, where a failure is still reported as one
            finally:
                sys.stdout = stdout
        return status
    except WorkFailed as exc:
        say(f"{prefix}: error: {' '.join(str(exc).split())}{_kept(args.saved, exc)}")
        return 1
    except (NNLearnError, OSError) as exc:
        say(f"{prefix}: error: {_message(exc)}")
        return 2
    except MemoryError:
        say(f"{prefix}: error: not enough memory for this network and data")
        return 2
    except KeyboardInterrupt:
        say(f"{prefix}: interrupted")
        return 130


def _kept(saved, exc):
    """What a verb that failed while working had saved, for its error line."""
    if saved:
        return "; " + "; ".join(saved)
    # stdout that fails may fail a verb that writes no file: then there is nothing to say.
    return "" if isinstance(exc, StdoutFailed) else "; nothing was saved"


#: The options and arguments that name a file or directory (argparse's dest).
PATH_DESTS = frozenset({"data", "out", "report", "checkpoint", "resume", "model", "weights", "dir", "inputs", "plot"})


def refuse_empty_paths(parser, args):
    """ParameterError for an empty path (``--out ""``), which names no file: it would
    otherwise mean the default, or the current directory."""
    for action in parser._actions:
        values = getattr(args, action.dest, None) if action.dest in PATH_DESTS else None
        values = values if isinstance(values, (list, tuple)) else [values]
        if "" in values:
            label = action.option_strings[-1] if action.option_strings else action.metavar or action.dest.upper()
            raise ParameterError(f"{label} is an empty path, which names no file; give a path")
