// In-memory stand-ins: a transport the test pushes notifications through, and a fetch that
// answers the session and command endpoints and records every request.
import type { Hello, Transport, TransportHandlers } from '../src/transport/types.js'

export class FakeTransport implements Transport {
  handlers: TransportHandlers | undefined
  hellos: Hello[] = []
  closed = 0
  private seq = 0

  connect(h: TransportHandlers): () => void {
    this.handlers = h
    h.state('connecting')
    this.hellos.push(h.hello())
    h.state('connected')
    return () => {
      this.closed++
    }
  }

  /** Deliver a notification with the next seq. */
  notify(n: Record<string, unknown>): void {
    this.handlers!.message({ seq: ++this.seq, ...n })
  }

  /** The server can no longer replay: it names its current seq. */
  resync(): void {
    this.handlers!.message({ status: 'resync', seq: this.seq })
  }

  raw(data: unknown): void {
    this.handlers!.message(data)
  }
}

export interface Sent {
  url: string
  method: string
  headers: Record<string, string>
  body: Record<string, unknown> | undefined
}

export type Responder = (req: Sent) => { status: number; body?: unknown } | Promise<{ status: number; body?: unknown }>

export function fakeFetch(command: Responder = () => ({ status: 202, body: { status: 'accepted' } })) {
  const sent: Sent[] = []
  const fetch = async (input: RequestInfo | URL, init: RequestInit = {}): Promise<Response> => {
    // Plain calls pass (url, init); an instrumented fetch may pass a Request and Headers.
    const request = input instanceof Request ? input : undefined
    const url = request ? request.url : String(input)
    const body = typeof init.body === 'string' ? init.body : request ? await request.text() : undefined
    const req: Sent = {
      url,
      method: init.method ?? request?.method ?? 'GET',
      headers: Object.fromEntries(new Headers(init.headers ?? request?.headers)),
      body: body ? (JSON.parse(body) as Record<string, unknown>) : undefined,
    }
    sent.push(req)
    const r = url.endsWith('/clicktrace/session')
      ? { status: 200, body: { client_id: '01JCLIENT0000000000000000A', token: 'tok-1', expires_at: Date.now() + 3_600_000 } }
      : url.endsWith('/clicktrace/v1/traces')
        ? { status: 200, body: { partialSuccess: {} } }
        : await command(req)
    return new Response(r.body === undefined ? null : JSON.stringify(r.body), {
      status: r.status,
      headers: { 'content-type': 'application/json' },
    })
  }
  return { fetch: fetch as typeof globalThis.fetch, sent, commands: () => sent.filter((s) => !s.url.includes('/clicktrace/')) }
}

/** Let pending promise callbacks run (no timers involved). */
export const flush = async (): Promise<void> => {
  for (let i = 0; i < 10; i++) await new Promise<void>((r) => queueMicrotask(r))
}
