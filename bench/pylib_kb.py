"""A second evaluation knowledge base: 120 Python library reference pages and 100 questions about them."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from pydocs import DEFAULT_CACHE, ensure_html

DATA = Path(__file__).resolve().parent / "data" / "pylib"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("target", type=Path, help="folder to copy the pages into (then `helpdesk sync` it)")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="where python3.11-doc is unpacked")
    args = parser.parse_args()
    html, _ = ensure_html(args.cache)
    args.target.mkdir(parents=True, exist_ok=True)
    names = (DATA / "pages.txt").read_text().split()
    for name in names:
        shutil.copyfile(html / "library" / f"{name}.html", args.target / f"{name}.html")
    print(f"{len(names)} pages in {args.target}; questions: {DATA / 'questions.jsonl'}")


if __name__ == "__main__":
    main()
