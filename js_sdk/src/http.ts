// The command's HTTP hop: headers and body metadata (protocol v1 "Command"), a CLIENT span,
// and the error a refusal carries. Resolves to the error, or undefined when accepted.
import { parseError } from './notification.js'
import { mayPropagate, type PropagateTo } from './origin.js'
import type { Session } from './session.js'
import type { ActionSpan } from './trace/types.js'
import type { CommandError, CommandRecord, CommandRequest } from './types.js'

export async function postCommand(
  fetcher: typeof fetch,
  req: CommandRequest,
  method: string,
  record: CommandRecord<unknown>,
  session: Session,
  deadline: number,
  propagateTo: PropagateTo,
  span: ActionSpan,
): Promise<CommandError | undefined> {
  const http = span.child(`HTTP ${method}`, 3 /* CLIENT */, { 'http.request.method': method, 'url.full': req.url })
  const headers: Record<string, string> = { 'content-type': 'application/json' }
  // Never hand the trace, the correlation id or the token to an origin not allowed to see them.
  const allowed = mayPropagate(req.url, propagateTo)
  const cause = req.causationId ? { causation_id: req.causationId } : {}
  if (allowed) {
    Object.assign(headers, {
      traceparent: record.traceparent,
      'x-correlation-id': record.correlationId,
      'x-clicktrace-client': session.token,
      'x-clicktrace-deadline': String(deadline),
    }, req.causationId ? { 'x-causation-id': req.causationId } : {})
  }
  const metadata = { correlation_id: record.correlationId, deadline, ...(allowed ? { client_id: session.clientId } : {}), ...cause }
  let res: Response
  try {
    const send = (): Promise<Response> => fetcher(req.url, { method, headers, body: JSON.stringify({ ...req.body, metadata }) })
    res = await (http.run ? http.run(send) : send())
  } catch (e) {
    http.end('network_error')
    return { code: 'network_error', message: String(e) }
  }
  const code = { 'http.response.status_code': res.status }
  if (res.ok) {
    http.end(undefined, code)
    return undefined
  }
  const body: unknown = await res.json().catch(() => undefined)
  const error = parseError((body as { error?: unknown } | undefined)?.error, `http_${res.status}`)
  http.end(error.code, code)
  return error
}
