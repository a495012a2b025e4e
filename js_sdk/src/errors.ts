// Failures outside a command's outcome, named so `onError` can tell them apart, and said
// loudly: a misconfigured app should learn why its commands never settle, not wait out deadlines.

export class ClicktraceError extends Error {
  override name = 'ClicktraceError'
  /** A snake_case error code from protocol.ts: `session_unavailable`, `transport_unavailable`,
   * `transport_unreachable`. */
  readonly code: string
  constructor(code: string, message: string, cause?: unknown) {
    super(message, { cause })
    this.code = code
  }
}
