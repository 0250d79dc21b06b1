"""The ``nnlearn`` command line: train, evaluate, predict, check and reproduce the course.

One module per verb (:data:`VERBS`, in the order ``nnlearn --help`` lists them), each with
``SUMMARY`` (one line), ``EXAMPLES`` (the help's epilog), ``add_arguments(parser)`` and
``run(args) -> int``, the exit status. Every mistake a user can make (a missing or
malformed file, weights that do not fit the data, an option out of range) surfaces as an
:class:`~nnlearn.errors.NNLearnError` or OSError, which :func:`main` prints as one line on
stderr with exit status 2, never a traceback; argparse's own usage errors read the same,
``nnlearn VERB: error: ...``. With ``--json`` a verb prints exactly one JSON object on
stdout and nothing else there. A closed or broken stderr or stdout ends no verb early:
messages to a stream that is gone are dropped (:func:`nnlearn.cli._monitor.say`).
"""

from __future__ import annotations

import argparse
import os
import sys

from .._version import __version__
from ..errors import NNLearnError
from ..persist._atomic import OutputExistsError
from . import cost, evaluate, gradcheck, predict, report, reproduce, serve, shard, show, train, tune
from ._monitor import say

__all__ = ["main", "build_parser", "VERBS"]

#: The verbs' modules; a verb is named after its module.
VERBS = (train, evaluate, predict, cost, gradcheck, reproduce, report, show, shard, tune, serve)


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
    """Run the command line; return the exit status (2 for any user error).

    argparse's own errors (an unknown verb or option, a value that is not a number) and
    ``--help`` / ``--version`` end in ``SystemExit``, with status 2 and 0.
    """
    _reserve_standard_descriptors()
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        # Left over by the verb's parser: its error, so that it reads "nnlearn VERB: error:".
        parser.verbs[args.verb].error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        return args.run(args)
    except BrokenPipeError:
        # The reader went away (`nnlearn predict ... | head`); say nothing more to it.
        _silence_stdout()
        return 1
    except (NNLearnError, OSError) as exc:
        say(f"nnlearn {args.verb}: error: {_message(exc)}")
        return 2
    except MemoryError:
        say(f"nnlearn {args.verb}: error: not enough memory for this network and data")
        return 2
    except KeyboardInterrupt:
        say(f"nnlearn {args.verb}: interrupted")
        return 130


def _reserve_standard_descriptors():
    """Open the null device on a closed stdin, stdout or stderr (``nnlearn train 2>&-``).

    Otherwise the next file opened (a model being saved) would get that descriptor, and
    whatever a library writes to "stderr" would land inside it.
    """
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            opened = os.open(os.devnull, os.O_RDWR)
            if opened != fd:  # a lower descriptor was free too: it gets its own in turn
                os.dup2(opened, fd)
                os.close(opened)


def _silence_stdout():
    """Send what is still buffered for stdout, and all later output, nowhere."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # no stdout, or one without a descriptor
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)
