// The command's HTTP hop (protocol v1 "Command"): headers and body metadata, one CLIENT span per
// attempt (its context is the traceparent sent, so the server span is its child), and the
// retries the protocol makes safe because the server answers a repeated correlation id with
// its first answer: once after renewing a refused session (401 invalid_client), and a bounded
// few times after a network failure. Resolves to the error, or undefined when accepted.
// The trace, the correlation id and the token go to the page's own origin and to the origins
// listed in `propagateTo` only: never to a third party by default.
import { formatTraceparent, parseTraceparent, type SpanContext } from './ids.js'
import { parseError } from './notification.js'
import {
  CAUSATION_HEADER,
  CLIENT_HEADER,
  CORRELATION_HEADER,
  DEADLINE_HEADER,
  HTTP_STATUS_PREFIX,
  INVALID_CLIENT,
  MAX_SEND_ATTEMPTS,
  MAX_SERVER_TIMING_LENGTH,
  NETWORK_ERROR,
  RETRY_BASE_MS,
  RETRY_MAX_MS,
  SERVER_TIMING_HEADER,
  TRACEPARENT_HEADER,
  TRACERESPONSE_HEADER,
} from './protocol.js'
import type { Session } from './session.js'
import type { ActionSpan } from './trace/types.js'
import type { CommandError, CommandRequest } from './types.js'

export type PropagateTo = ReadonlyArray<string | RegExp>

/** The absolute URL, or undefined when `url` cannot be resolved. */
export function resolveUrl(url: string): URL | undefined {
  try {
    return new URL(url, globalThis.location?.href)
  } catch {
    return undefined
  }
}

/** Same origin always; another origin only when `propagateTo` lists it (or a pattern matches the URL). */
export function mayPropagate(url: string, propagateTo: PropagateTo): boolean {
  const target = resolveUrl(url)
  if (!target) return false
  return (
    target.origin === globalThis.location?.origin ||
    propagateTo.some((rule) => (typeof rule === 'string' ? resolveUrl(rule)?.origin === target.origin : rule.test(target.href)))
  )
}

/** The `desc` of Server-Timing metric `name` (`trace;desc=00-…`, `traceparent;desc="00-…"`). */
const timingDesc = (timing: string, name: string): string | undefined =>
  new RegExp(`(?:^|,)\\s*${name}\\s*;[^,]*?\\bdesc\\s*=\\s*"?([\\w-]+)`, 'i').exec(timing)?.[1]

/**
 * The server span's context from a response: `traceresponse`, else Server-Timing's `trace`
 * metric, else its `traceparent` metric. Never throws: nothing valid gives undefined.
 */
export function responseTrace(headers: Headers): SpanContext | undefined {
  const timing = headers.get(SERVER_TIMING_HEADER)?.slice(0, MAX_SERVER_TIMING_LENGTH) ?? ''
  return (
    parseTraceparent(headers.get(TRACERESPONSE_HEADER)) ??
    parseTraceparent(timingDesc(timing, 'trace')) ??
    parseTraceparent(timingDesc(timing, 'traceparent'))
  )
}

export interface CommandSend {
  fetcher: typeof fetch
  request: CommandRequest
  method: string
  correlationId: string
  /** Unix ms: sent as `x-clicktrace-deadline`; no retry is started past it. */
  deadline: number
  propagateTo: PropagateTo
  /** The action span: each attempt is its CLIENT child. */
  span: ActionSpan
  session: Session
  /** A new session after the server refused the token (and the transport reconnected with it). */
  renew(): Promise<Session>
  /** True once the command settled otherwise (notification, deadline): stop retrying. */
  settled(): boolean
}

/** Backoff before network retry `n` (1-based): 250 ms, 1 s, capped at 2 s. */
export const retryDelay = (n: number): number => Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 4 ** (n - 1))

type Attempt = { error: CommandError; status?: number } | undefined

export async function sendCommand(o: CommandSend): Promise<CommandError | undefined> {
  const { request: req, method, correlationId, deadline, settled } = o
  let session = o.session

  async function post(resend: number): Promise<Attempt> {
    const http = o.span.child(`HTTP ${method}`, 3 /* CLIENT */, {
      'clicktrace.correlation_id': correlationId,
      'http.request.method': method,
      'url.full': req.url,
      'http.request.resend_count': resend || undefined,
    })
    const headers: Record<string, string> = { 'content-type': 'application/json' }
    // Never hand the trace, the correlation id or the token to an origin not allowed to see them.
    const allowed = mayPropagate(req.url, o.propagateTo)
    if (allowed) {
      headers[TRACEPARENT_HEADER] = formatTraceparent(http.context)
      headers[CORRELATION_HEADER] = correlationId
      headers[CLIENT_HEADER] = session.token
      headers[DEADLINE_HEADER] = String(deadline)
      if (req.causationId) headers[CAUSATION_HEADER] = req.causationId
    }
    // Undefined fields are left out of the JSON.
    const metadata = {
      correlation_id: correlationId,
      deadline,
      client_id: allowed ? session.clientId : undefined,
      causation_id: req.causationId,
    }
    let res: Response
    try {
      const send = (): Promise<Response> => o.fetcher(req.url, { method, headers, body: JSON.stringify({ ...req.body, metadata }) })
      res = await (http.run?.(send) ?? send())
    } catch (e) {
      http.end(NETWORK_ERROR)
      return { error: { code: NETWORK_ERROR, message: String(e) } }
    }
    // A server that did not continue our trace (it distrusts or never got our traceparent)
    // names its own: kept on the CLIENT span so the two traces can be found from each other.
    const server = responseTrace(res.headers)
    const attributes = {
      'http.response.status_code': res.status,
      'clicktrace.server.trace_id': server?.traceId === http.context.traceId ? undefined : server?.traceId,
    }
    if (res.ok) {
      http.end(undefined, attributes)
      return undefined
    }
    const body: unknown = await res.json().catch(() => undefined)
    const error = parseError((body as { error?: unknown } | undefined)?.error, `${HTTP_STATUS_PREFIX}${res.status}`)
    http.end(error.code, attributes)
    return { error, status: res.status }
  }

  let renewed = false
  let tries = 0 // network failures so far
  for (let resend = 0; ; resend++) {
    const r = await post(resend)
    if (!r || settled()) return r?.error
    if (r.status === 401 && r.error.code === INVALID_CLIENT && !renewed) {
      renewed = true
      try {
        session = await o.renew()
      } catch {
        return r.error
      }
      continue
    }
    if (r.status !== undefined || ++tries >= MAX_SEND_ATTEMPTS) return r.error
    const wait = retryDelay(tries)
    if (Date.now() + wait >= deadline) return r.error
    await new Promise((r) => setTimeout(r, wait))
    if (settled()) return undefined
  }
}
