"""The limits the route checks before decoding, apart from the decoder: the decoder builds
OpenTelemetry SDK spans, and the SDK is an extra the route loads only when it is built.

Also the bounds on what a browser may add to the journal (``clicktrace.ingest.admission``):
a tab's spans are the tab's word, so what they may write is a share the tab cannot exceed.
"""

from clicktrace.journal.store import DEFAULT_MAX_AGE_SECONDS

__all__ = [
    "BROWSER_SCOPES",
    "CLIENT_STAGES_PER_MINUTE",
    "MAX_BROWSER_ENTRIES_PER_ID",
    "MAX_CLICKS_PER_REQUEST",
    "MAX_FUTURE_MS",
    "MAX_PAST_MS",
    "MAX_SPANS_PER_REQUEST",
    "OWNER_CHECK_SECONDS",
    "OWNER_READS_AT_ONCE",
]

MAX_SPANS_PER_REQUEST = 512
BROWSER_SCOPES = frozenset({"clicktrace-pinia"})  # the plugin's tracer name

# A click gives clicked, settled, session, one http per attempt and one received per
# notification (progress included): a dozen at most in practice.
MAX_BROWSER_ENTRIES_PER_ID = 16
# Browser entries one client may add per minute, whatever the ids (a token bucket: bursts up
# to the whole minute's share). A tab clicking once a second for a minute uses about 300.
CLIENT_STAGES_PER_MINUTE = 600
# Distinct correlation ids one request's spans may name (one journal read each); the plugin
# posts at most 64 spans a request, a few per click.
MAX_CLICKS_PER_REQUEST = 128
OWNER_READS_AT_ONCE = 8
# How long a request waits for the journal to say whose clicks they are; ids not answered by
# then are not journaled (the spans still go to the trace pipeline).
OWNER_CHECK_SECONDS = 2.0
# The window around the time of receipt a browser time is clamped to: a little ahead (clocks
# drift, and spans are exported after the click settles, so never much), and back as far as
# the journal keeps entries by default.
MAX_FUTURE_MS = 5_000.0
MAX_PAST_MS = DEFAULT_MAX_AGE_SECONDS * 1000.0
