"""Write the generated lint docs (one page per rule, rules.md, coverage.md) into docs/lint/.

Run from the checkout: python3 docs/lint/generate.py [--corpus ../shared/conformance]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from builder import lint  # noqa: E402,F401  (registers the rules)
from builder.lint.docs import pages  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", type=Path, default=None,
                    help="the conformance corpus, for coverage.md's agreement column")
    args = ap.parse_args()
    for name, text in pages(args.corpus).items():
        (HERE / name).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
