"""The operator console's server side: a page under ``/clicktrace/console`` behind the operator
token, and the JSON it reads from any journal store (one click's waterfall, recent clicks,
what needs a person, stage latency, health), and sending a dead-lettered command again.

``clicktrace.install(app, ..., journal=journal, operator_token=..., console=True)`` serves it;
:func:`console_routes` builds the routes for an app wired by hand. :func:`resend` is what the
console's button and ``python -m clicktrace resend <id>`` call.
"""

from __future__ import annotations

from clicktrace.console._resend import NotResendable, Resent, resend
from clicktrace.console._route import CONSOLE_PATH, console_routes

__all__ = ["CONSOLE_PATH", "NotResendable", "Resent", "console_routes", "resend"]
