"""The limits the route checks before decoding, apart from the decoder: the decoder builds
OpenTelemetry SDK spans, and the SDK is an extra the route loads only when it is built."""

__all__ = ["BROWSER_SCOPES", "MAX_SPANS_PER_REQUEST"]

MAX_SPANS_PER_REQUEST = 512
BROWSER_SCOPES = frozenset({"clicktrace-pinia"})  # the plugin's tracer name
