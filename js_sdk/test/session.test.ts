// The tab's session through the client core: fetched once at the first command, renewed before
// expiry with the current token, and tried again after a failure.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createClient } from '../src/client.js'
import { MemoryTransport, memoryFetch } from '../src/testing/index.js'
import { flush, setup } from './harness.js'

describe('the session', () => {
  beforeEach(() => vi.useFakeTimers())
  afterEach(() => vi.useRealTimers())

  it('does nothing on the network until the first command, then one session for all', async () => {
    const { net, send, transport } = setup()
    await flush()
    expect(net.sent).toHaveLength(0)
    send()
    send()
    await flush()
    expect(net.sent.filter((s) => s.url === '/clicktrace/session')).toHaveLength(1)
    expect(net.commands()).toHaveLength(2)
    expect(transport.hellos).toHaveLength(1)
  })

  it('with prewarm, opens the session and the transport at start, so the first click waits for neither', async () => {
    const transport = new MemoryTransport()
    const net = memoryFetch()
    const client = createClient({ transport, fetch: net.fetch, prewarm: true })
    expect(client.connection.status).toBe('idle')
    await flush()
    expect(net.sent.map((s) => s.url)).toEqual(['/clicktrace/session'])
    expect(transport.hellos).toEqual([{ token: 'tok-1', last_seq: 0 }])
    expect(client.connection.status).toBe('connected')
    const h = client.command({ url: '/api/x', name: 'x' }, { optimistic: () => {}, settle: () => {} })
    await flush()
    transport.confirm(h.correlationId)
    await client.flush()
    type Export = { resourceSpans: Array<{ scopeSpans: Array<{ spans: Array<{ name: string }> }> }> }
    const names = net.sent
      .filter((s) => s.url === '/clicktrace/v1/traces')
      .flatMap((s) => (s.body as unknown as Export).resourceSpans.flatMap((r) => r.scopeSpans.flatMap((c) => c.spans.map((x) => x.name))))
    // A cold first click has a `clicktrace session` child span (recorder.test.ts); a warm one has none.
    expect(names.sort()).toEqual(['HTTP POST', 'clicktrace notification', 'x'])
    expect(net.sent.filter((s) => s.url === '/clicktrace/session')).toHaveLength(1)
    expect(transport.hellos).toHaveLength(1)
  })

  it('connect() warms up on demand, and a failed warm-up is said once and retried by the next command', async () => {
    let fail = true
    const transport = new MemoryTransport()
    const base = memoryFetch()
    const fetch = (async (u: RequestInfo | URL, i?: RequestInit) =>
      fail && String(u).endsWith('/session') ? new Response('no', { status: 503 }) : base.fetch(u, i)) as typeof globalThis.fetch
    const errors: unknown[] = []
    const client = createClient({ transport, fetch, tracesUrl: false, onError: (e) => errors.push(e) })
    await flush()
    expect(base.sent).toHaveLength(0) // no prewarm: nothing until asked
    await expect(client.connect()).resolves.toBeUndefined()
    expect(errors).toMatchObject([{ code: 'session_unavailable' }])
    expect(transport.hellos).toHaveLength(0)
    fail = false
    const h = client.command({ url: '/api/x' }, { optimistic: () => {}, settle: () => {} })
    await flush()
    expect(transport.hellos).toHaveLength(1)
    transport.confirm(h.correlationId)
    expect(h.status).toBe('confirmed')
  })

  it('rejects with session_unavailable when the session cannot be had, and retries next time', async () => {
    let fail = true
    const transport = new MemoryTransport()
    const base = memoryFetch()
    const fetch = (async (u: RequestInfo | URL, i?: RequestInit) =>
      fail && String(u).endsWith('/session') ? new Response('no', { status: 503 }) : base.fetch(u, i)) as typeof globalThis.fetch
    const errors: unknown[] = []
    const client = createClient({ transport, fetch, tracesUrl: false, onError: (e) => errors.push(e) })
    const fx = { optimistic: () => {}, settle: () => {} }
    const h = client.command({ url: '/api/x' }, fx)
    await expect(h.settled).resolves.toMatchObject({ status: 'rejected', error: { code: 'session_unavailable' } })
    expect(errors).toHaveLength(1)
    fail = false
    const h2 = client.command({ url: '/api/x' }, fx)
    await flush()
    expect(base.commands()).toHaveLength(1)
    expect(h2.status).toBe('pending')
  })

  it('renews the session before it expires and reconnects as the new client from seq 0', async () => {
    const transport = new MemoryTransport()
    let n = 0
    const base = memoryFetch()
    const fetch = (async (u: RequestInfo | URL, i?: RequestInit) => {
      if (!String(u).endsWith('/clicktrace/session')) return base.fetch(u, i)
      n++
      return Response.json({ client_id: `01JCLIENT000000000000000${n}A`, token: `tok-${n}`, expires_at: Date.now() + 60_000 })
    }) as typeof globalThis.fetch
    const client = createClient({ transport, fetch, tracesUrl: false })
    const fx = { optimistic: () => {}, settle: () => {} }
    const h = client.command({ url: '/api/x' }, fx)
    await flush()
    transport.notify({ correlation_id: h.correlationId, status: 'confirmed' })
    vi.advanceTimersByTime(29_000) // more than 30 s left: same session
    client.command({ url: '/api/x' }, fx)
    await flush()
    expect(n).toBe(1)
    vi.advanceTimersByTime(2_000)
    client.command({ url: '/api/x' }, fx)
    await flush()
    expect(n).toBe(2)
    expect(transport.closed).toBe(1)
    expect(transport.hellos.at(-1)).toEqual({ token: 'tok-2', last_seq: 0 })
    expect(base.commands().at(-1)!.headers['x-clicktrace-client']).toBe('tok-2')
  })

  it('renews with the current token, so a refusal the token survives keeps the client and its seq', async () => {
    const transport = new MemoryTransport()
    const presented: Array<string | null> = []
    const base = memoryFetch()
    const fetch = (async (u: RequestInfo | URL, i?: RequestInit) => {
      if (!String(u).endsWith('/clicktrace/session')) return base.fetch(u, i)
      presented.push(new Headers(i?.headers).get('x-clicktrace-client'))
      // The server still accepts the token: same client id, fresh token.
      return Response.json({ client_id: '01JCLIENT0000000000000001A', token: `tok-${presented.length}` })
    }) as typeof globalThis.fetch
    const client = createClient({ transport, fetch, tracesUrl: false })
    const h = client.command({ url: '/api/x' }, { optimistic: () => {}, settle: () => {} })
    await flush()
    transport.notify({ correlation_id: h.correlationId, status: 'confirmed' })
    transport.handlers!.state('rejected') // e.g. refused as 'unavailable' while its replay buffer was down
    vi.advanceTimersByTime(0)
    await flush()
    expect(presented).toEqual([null, 'tok-1'])
    expect(transport.closed).toBe(1)
    expect(transport.hellos).toEqual([
      { token: 'tok-1', last_seq: 0 },
      { token: 'tok-2', last_seq: 1 },
    ])
  })
})
