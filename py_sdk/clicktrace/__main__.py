"""``python -m clicktrace``: the journal's command line (see :mod:`clicktrace.journal._cli`),
with ``resend`` from the console (it needs the bus, above the journal)."""

from __future__ import annotations

import sys

from clicktrace.console._resend import resend_command
from clicktrace.journal._cli import main

if __name__ == "__main__":
    sys.exit(main(resend=resend_command))
