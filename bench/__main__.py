"""``python -m bench NAME [options]`` — run one benchmark. ``python -m bench`` lists them."""

from __future__ import annotations

import importlib
import sys

# name -> module with ``main(argv) -> int`` and a one-line docstring. Add a benchmark here.
COMMANDS = {
    "upload": "bench.upload",
    "lists": "bench.lists",
    "workbench": "bench.workbench",
    "assessments": "bench.assessments",
    "load": "bench.load",
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        print("usage: python -m bench NAME [options]   (NAME --help for its options)")
        for name, path in COMMANDS.items():
            doc = (importlib.import_module(path).__doc__ or "").strip().splitlines()
            print(f"  {name:<12} {doc[0] if doc else ''}")
        return 0 if not argv else 2
    return importlib.import_module(COMMANDS[argv[0]]).main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
