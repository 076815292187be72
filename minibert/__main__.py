"""`python -m minibert [TEXT ...]`: classify texts (by default the seed notebooks' two sentences)."""

from __future__ import annotations

import argparse
import json
import sys

from . import DEFAULT_CHECKPOINT, CheckpointNotFoundError, classify

SEED_TEXTS = ["I've been waiting for a HuggingFace course my whole life.", "I hate this so much!"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m minibert", description=__doc__)
    parser.add_argument("texts", nargs="*", help="texts to classify (default: the seed notebooks' two sentences)")
    parser.add_argument("--model", default=DEFAULT_CHECKPOINT, help="hub id or local checkpoint directory")
    parser.add_argument("--revision", default=None, help="hub revision (the default model is pinned)")
    parser.add_argument("--top-k", type=int, default=None, help="return the k best labels per text")
    parser.add_argument("--backend", choices=("numba", "numpy"), default=None)
    args = parser.parse_args(argv)
    kwargs = {"top_k": args.top_k} if args.top_k is not None else {}
    try:
        results = classify(args.texts or SEED_TEXTS, args.model, revision=args.revision, backend=args.backend, **kwargs)
    except CheckpointNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for text, result in zip(args.texts or SEED_TEXTS, results, strict=True):
        print(json.dumps({"text": text, "result": result}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
