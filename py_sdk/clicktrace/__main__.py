"""``python -m clicktrace``: the journal's command line (see :mod:`clicktrace.journal._cli`)."""

from __future__ import annotations

import sys

from clicktrace.journal._cli import main

if __name__ == "__main__":
    sys.exit(main())
