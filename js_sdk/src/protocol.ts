// The wire protocol's names and limits (docs/protocol.md, v1), in one place: header names,
// default routes, error codes and the bounds the client holds untrusted input and retries to.
// Internal: no entry exports them (they are the wire, not the API); tests/test_protocol.py
// holds them equal to the Python SDK's `clicktrace.protocol`.

// One constant each rather than objects: a minifier shortens the names, not property keys.
export const TRACEPARENT_HEADER = 'traceparent'
export const CORRELATION_HEADER = 'x-correlation-id'
export const CAUSATION_HEADER = 'x-causation-id'
export const CLIENT_HEADER = 'x-clicktrace-client'
export const DEADLINE_HEADER = 'x-clicktrace-deadline'
/** Response: the server span's context (the W3C Trace Context Level 2 drafts' header). */
export const TRACERESPONSE_HEADER = 'traceresponse'
/** Response: metrics `trace;desc=<traceparent>` (Trace Context Level 3 editor's draft) and
 * `traceparent;desc=<traceparent>` (what Grafana Faro reads), read when `traceresponse` is absent. */
export const SERVER_TIMING_HEADER = 'server-timing'

export const SESSION_URL = '/clicktrace/session'
export const TRACES_URL = '/clicktrace/v1/traces'
export const WEBSOCKET_URL = '/clicktrace/ws'
export const SOCKET_IO_PATH = '/socket.io'
/** The Socket.IO event notifications arrive on. */
export const SOCKET_IO_EVENT = 'clicktrace'
/** The instrumentation scope of the browser's spans: the trace route takes only this scope's. */
export const SCOPE_NAME = 'clicktrace-pinia'
/** Where `exposeTestHook()` puts the page's records by default (the Python Playwright helpers read it). */
export const TEST_HOOK_NAME = '__clicktrace'

// Error codes: the server's the client acts on, then those the client produces.
/** The server refused the command's token (401): the client renews its session and resends once. */
export const INVALID_CLIENT = 'invalid_client'
/** The WebSocket close reason, with code POLICY_VIOLATION, when the server refuses the hello's
 * token: the connection is `rejected` and the client renews its session. */
export const INVALID_TOKEN = 'invalid_token'
export const POLICY_VIOLATION = 1008
/** A rejection notification that names no code. */
export const REJECTED = 'rejected'
/** An HTTP error answer without an error body: `http_<status>`. */
export const HTTP_STATUS_PREFIX = 'http_'
export const NETWORK_ERROR = 'network_error'
export const SESSION_UNAVAILABLE = 'session_unavailable'
export const TIMED_OUT = 'timed_out'
/** The transport's library is missing (socket.io-client not installed). */
export const TRANSPORT_UNAVAILABLE = 'transport_unavailable'
/** The transport failed to connect UNREACHABLE_AFTER times without ever opening. */
export const TRANSPORT_UNREACHABLE = 'transport_unreachable'

// Why the server refused a topic watch (a `refused` frame's `error.code`; reported through
// onError): the app's may_watch hook said no, not a topic name, past the per-socket cap.
export const FORBIDDEN_TOPIC = 'forbidden_topic'
export const INVALID_TOPIC = 'invalid_topic'
export const TOO_MANY_TOPICS = 'too_many_topics'
/** Topic names (and update keys) are printable ASCII without spaces, at most this long. */
export const MAX_TOPIC_LENGTH = 128

/** Error texts are shown to users; cap what an untrusted peer can put on screen. */
export const MAX_ERROR_TEXT = 500
/** Only this much of a Server-Timing header is searched for the trace (untrusted, may be long). */
export const MAX_SERVER_TIMING_LENGTH = 2_048
/** A replay epoch longer than this is not one a server of ours sends: the frame is dropped. */
export const MAX_EPOCH_LENGTH = 64
/** A POST that failed on the network is sent at most this many times (same correlation id). */
export const MAX_SEND_ATTEMPTS = 3
/** Backoff before network retry n (1-based): RETRY_BASE_MS * 4^(n-1), capped, within the deadline. */
export const RETRY_BASE_MS = 250
export const RETRY_MAX_MS = 2_000
/** Connection failures in a row (never opened) before the transport is reported unreachable. */
export const UNREACHABLE_AFTER = 3
/** W3C Trace Context Level 2 trace-flags: sampled, and the trace id is random. */
export const FLAG_SAMPLED = 1
export const FLAG_RANDOM = 2
