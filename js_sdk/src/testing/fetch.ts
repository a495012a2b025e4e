// An in-memory server for the plugin's HTTP side: the session route, the trace route, and a
// responder for commands (202 by default); every request is recorded.
import { SESSION_URL, TRACES_URL } from '../protocol.js'

export interface SentRequest {
  url: string
  method: string
  headers: Record<string, string>
  body: Record<string, unknown> | undefined
}

export type Answer = { status: number; body?: unknown; headers?: Record<string, string> }
export type Responder = (req: SentRequest) => Answer | Promise<Answer>

export interface MemoryFetch {
  fetch: typeof globalThis.fetch
  /** Every request, in order. */
  sent: SentRequest[]
  /** The command requests (not session or trace export). */
  commands(): SentRequest[]
}

export const ACCEPTED: Answer = { status: 202, body: { status: 'accepted' } }

export function memoryFetch(
  command: Responder = () => ACCEPTED,
  session: () => Answer = () => ({
    status: 200,
    body: { client_id: '01JCLIENT0000000000000000A', token: 'tok-1', expires_at: Date.now() + 3_600_000 },
  }),
): MemoryFetch {
  const sent: SentRequest[] = []
  const isOurs = (url: string): boolean => url.endsWith(SESSION_URL) || url.endsWith(TRACES_URL)
  const fetch = async (input: RequestInfo | URL, init: RequestInit = {}): Promise<Response> => {
    // Plain calls pass (url, init); an instrumented fetch may pass a Request and Headers.
    const request = input instanceof Request ? input : undefined
    const url = request ? request.url : String(input)
    const text = typeof init.body === 'string' ? init.body : request ? await request.text() : undefined
    const req: SentRequest = {
      url,
      method: init.method ?? request?.method ?? 'GET',
      headers: Object.fromEntries(new Headers(init.headers ?? request?.headers)),
      body: text ? (JSON.parse(text) as Record<string, unknown>) : undefined,
    }
    sent.push(req)
    const r = url.endsWith(SESSION_URL)
      ? session()
      : url.endsWith(TRACES_URL)
        ? { status: 200, body: { partialSuccess: {} } }
        : await command(req)
    return new Response(r.body === undefined ? null : JSON.stringify(r.body), {
      status: r.status,
      headers: { 'content-type': 'application/json', ...r.headers },
    })
  }
  return { fetch: fetch as typeof globalThis.fetch, sent, commands: () => sent.filter((s) => !isOurs(s.url)) }
}
