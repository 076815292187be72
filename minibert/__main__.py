"""`python -m minibert ...`: the same as the `minibert` command (minibert/cli.py)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
