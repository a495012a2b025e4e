"""``python -m clicktrace``: the journal's command line (see :mod:`clicktrace.journal.cli`)."""

from __future__ import annotations

import sys

from clicktrace.journal.cli import main

if __name__ == "__main__":
    sys.exit(main())
