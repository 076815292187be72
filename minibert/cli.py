"""The `minibert` command (also `python -m minibert`).

    minibert classify "I love it" "I hate it"          one line per text: label, score, text
    minibert classify --json < texts.txt               JSON lines, one text per line of stdin
    minibert classify -i reviews.csv -o labels.parquet  a file of any size, streamed (--resume after a kill)
    minibert explain "I love it"                       one text's walk through the model, step by step

Bare `minibert` prints this help. Exit codes: 0 ok, 2 usage error, 1 runtime error (one `error:` line on
stderr; --debug shows the traceback).
"""

from __future__ import annotations

import argparse
import os
import sys

from . import corpus, explain
from .hub import DEFAULT_CHECKPOINT

# Runtime errors a user can fix: missing file, checkpoint not found (an OSError), bad model directory or input
# row (ValueError/FileNotFoundError), a missing optional extra (ImportError).
USER_ERRORS = (OSError, ValueError, ImportError)


def top_k_arg(value: str) -> int | None:
    if value == "all":
        return None
    try:
        k = int(value)
    except ValueError:
        k = 0
    if k < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer or 'all', got {value!r}")
    return k


def positive_int(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value!r}")
    return n


# ---------------------------------------------------------------------------------------------
# minibert classify


def add_classify_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "classify",
        help="label texts (arguments, stdin or a file of any size)",
        description="Label texts with a sequence-classification model. Texts come from the arguments, else "
        "--input FILE, else stdin (one text per line). Results go to stdout (`LABEL score<TAB>text`, or JSON "
        "lines with --json), or to --output FILE (.jsonl, .csv or .parquet by extension). Files are streamed "
        "in batches with constant memory, in input order; --resume continues a killed run.",
    )
    p.add_argument("texts", nargs="*", help="texts to classify (default: --input, else one per line of stdin)")
    io = p.add_argument_group("files")
    io.add_argument("-i", "--input", metavar="FILE", help="read texts from a .txt (one a line), .jsonl, .csv or "
                    ".parquet file")
    io.add_argument("--column", "--field", dest="column", default="text",
                    help="the .jsonl field or .csv/.parquet column holding the text (default: text)")
    io.add_argument("-o", "--output", metavar="FILE", help="write rows to a .jsonl, .csv or .parquet file")
    io.add_argument("--resume", action="store_true", help="keep the complete rows already in --output, classify "
                    "only the rest")
    out = p.add_argument_group("results")
    out.add_argument("--json", action="store_true", help="stdout as JSON lines: {text, label, score} "
                     "(with --top-k: {text, labels, scores})")
    out.add_argument("--top-k", type=top_k_arg, default=1, metavar="K",
                     help="the K best labels per text, best first, or 'all' (default: 1, the best)")
    out.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                     help="a progress bar on stderr (default: when stderr is a terminal and there is more than "
                     "one batch)")
    model = p.add_argument_group("model")
    model.add_argument("--model", default=DEFAULT_CHECKPOINT, help="hub id or local checkpoint directory "
                       "(default: %(default)s, pinned)")
    model.add_argument("--revision", default=None, help="hub revision (the default model is pinned)")
    model.add_argument("--batch-size", type=positive_int, default=32, help="texts per forward pass "
                       "(default: %(default)s)")
    model.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    model.add_argument("--backend", choices=("numba", "numpy"), default=None, help="default: numba")
    p.set_defaults(func=run_classify, parser=p)
    return p


def run_classify(args: argparse.Namespace) -> int:
    if args.texts and args.input:
        args.parser.error("give texts as arguments or --input FILE, not both")
    if args.resume and not args.output:
        args.parser.error("--resume needs --output FILE")
    if args.input:
        texts = corpus.read_texts(args.input, args.column)  # a missing file fails before the model loads
    elif args.texts:
        texts = iter(args.texts)
    else:
        if sys.stdin.isatty():
            print("reading texts from stdin, one per line (Ctrl-D to end)", file=sys.stderr)
        texts = corpus.stdin_texts()
    if args.output:
        corpus.check_output(args.output)  # an unknown format or missing pyarrow fails before the model loads
    clf = corpus.load_pipeline(args.model, revision=args.revision, backend=args.backend, dtype=args.dtype,
                               batch_size=args.batch_size)
    if args.output:
        writer = corpus.open_output(args.output, top_k=args.top_k, num_labels=clf.model.config.num_labels,
                                    resume=args.resume)
    else:
        writer = corpus.LinesWriter(sys.stdout, json=args.json)
    want_total = args.input and (args.progress or (args.progress is None and sys.stderr.isatty()))
    total = corpus.count_rows(args.input) if want_total else None
    corpus.run(clf, texts, writer, top_k=args.top_k, batch_size=args.batch_size, progress=args.progress,
               total=total)
    return 0


# ---------------------------------------------------------------------------------------------
# The command: one subparser per command. A new command is a module with add_parser(subparsers) that sets
# `func` (args -> exit code); register it in COMMANDS.

COMMANDS = (add_classify_parser, explain.add_parser)


def version() -> str:
    from . import __version__

    return f"minibert {__version__}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minibert", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=version())
    parser.add_argument("--debug", action="store_true", help="show tracebacks of runtime errors")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for add_parser in COMMANDS:
        # --debug also after the command; SUPPRESS keeps `minibert --debug classify` from being reset to False
        add_parser(subparsers).add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                                            help="show tracebacks of runtime errors")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 0
    try:
        return args.func(args)
    except USER_ERRORS as e:
        if args.debug:
            raise
        if isinstance(e, BrokenPipeError):  # `minibert classify ... | head`: the reader left; not an error
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        print("error: " + " ".join(line.strip() for line in str(e).splitlines() if line.strip()), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if args.debug:
            raise
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
