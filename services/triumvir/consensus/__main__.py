"""`python -m triumvir.consensus --id 1 --listen ... --peers ... --data-dir ...`: one replica."""

from __future__ import annotations

import sys

from triumvir.consensus.config import ConfigError, parse
from triumvir.consensus.server import serve


def main(argv: list[str] | None = None) -> int:
    try:
        config = parse(sys.argv[1:] if argv is None else argv)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    serve(config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
