// The command's HTTP hop through the client core: headers and body metadata, which origins may
// see them, and the resends the protocol makes safe (after a network failure, after a 401).
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createClient } from '../src/client.js'
import { responseTrace, retryDelay } from '../src/http.js'
import { MAX_SEND_ATTEMPTS, MAX_SERVER_TIMING_LENGTH } from '../src/protocol.js'
import { MemoryTransport, memoryFetch } from '../src/testing/index.js'
import { flush, setup } from './harness.js'

describe("the command's HTTP hop", () => {
  beforeEach(() => vi.useFakeTimers())
  afterEach(() => vi.useRealTimers())

  it('keeps trace, correlation and token headers away from other origins unless allowed', async () => {
    const { net, send } = setup({ propagateTo: ['https://api.partner.example', /^https:\/\/cdn\.example\/cmd\//] })
    send('https://third.party.example/api')
    send('https://api.partner.example/api')
    send('https://cdn.example/cmd/1')
    send('/same/origin')
    await flush()
    const [third, partner, cdn, same] = net.commands()
    expect(third!.headers).toEqual({ 'content-type': 'application/json' })
    expect((third!.body!.metadata as Record<string, unknown>).client_id).toBeUndefined()
    for (const r of [partner, cdn, same]) {
      expect(Object.keys(r!.headers).sort()).toEqual([
        'content-type',
        'traceparent',
        'x-clicktrace-client',
        'x-clicktrace-deadline',
        'x-correlation-id',
      ])
    }
  })

  it('sends the causation id and the deadline when given', async () => {
    const { net, send } = setup()
    send('/api/x', { causationId: '01JCAUSE000000000000000000', deadlineMs: 2500 })
    await flush()
    const [c] = net.commands()
    expect(c!.headers['x-causation-id']).toBe('01JCAUSE000000000000000000')
    expect(c!.headers['x-clicktrace-deadline']).toBe(String(Date.now() + 2500))
    expect(c!.body!.metadata).toMatchObject({ causation_id: '01JCAUSE000000000000000000', deadline: Date.now() + 2500 })
  })

  it('retries a POST that failed on the network with the same correlation id, 3 tries with backoff, then network_error', async () => {
    const { send, net } = setup({}, () => {
      throw new TypeError('Failed to fetch')
    })
    const h = send('/down')
    await flush()
    expect(net.commands()).toHaveLength(1)
    await vi.advanceTimersByTimeAsync(retryDelay(1) - 1)
    expect(net.commands()).toHaveLength(1) // backing off
    await vi.advanceTimersByTimeAsync(1)
    expect(net.commands()).toHaveLength(2)
    await vi.advanceTimersByTimeAsync(retryDelay(2))
    expect(net.commands()).toHaveLength(3)
    await expect(h.settled).resolves.toMatchObject({ status: 'rejected', error: { code: 'network_error' } })
    await vi.advanceTimersByTimeAsync(60_000)
    const sent = net.commands()
    expect(sent).toHaveLength(MAX_SEND_ATTEMPTS)
    expect(new Set(sent.map((c) => c.headers['x-correlation-id']))).toEqual(new Set([h.correlationId]))
    expect(new Set(sent.map((c) => (c.body!.metadata as { correlation_id: string }).correlation_id))).toEqual(new Set([h.correlationId]))
    expect(new Set(sent.map((c) => c.headers.traceparent)).size).toBe(3) // one HTTP span per attempt
  })

  it('stops retrying the network at the deadline, and once the outcome arrived', async () => {
    const late = setup({ deadlineMs: 200 }, () => {
      throw new TypeError('Failed to fetch')
    })
    late.send()
    await vi.advanceTimersByTimeAsync(10_000)
    expect(late.net.commands()).toHaveLength(1) // a 250 ms wait would end past the 200 ms deadline
    let first = true
    const early = setup({}, () => {
      if (!first) return { status: 202 }
      first = false
      throw new TypeError('Failed to fetch')
    })
    const h = early.send()
    await flush()
    early.transport.notify({ correlation_id: h.correlationId, status: 'confirmed' }) // the first POST got through after all
    await vi.advanceTimersByTimeAsync(10_000)
    expect(early.net.commands()).toHaveLength(1)
    expect(h.status).toBe('confirmed')
  })

  it('succeeds on a network retry, and answers http_<status> without an error body with no retry', async () => {
    let n = 0
    const { send, net } = setup({}, (r) => {
      if (r.url.endsWith('/flaky') && n++ === 0) throw new TypeError('Failed to fetch')
      return r.url.endsWith('/500') ? { status: 500 } : { status: 202 }
    })
    const h = send('/flaky')
    await vi.advanceTimersByTimeAsync(retryDelay(1))
    expect(h.status).toBe('pending')
    expect(h.record.error).toBeUndefined()
    expect(net.commands()).toHaveLength(2)
    await expect(send('/500').settled).resolves.toMatchObject({ status: 'rejected', error: { code: 'http_500', message: 'http_500' } })
    expect(net.commands()).toHaveLength(3)
  })

  it('on 401 invalid_client renews the session, reconnects as that client, and resends the same command once', async () => {
    const transport = new MemoryTransport()
    let sessions = 0
    const net = memoryFetch(
      (r) =>
        r.headers['x-clicktrace-client'] === 'tok-1' || r.url.endsWith('/again')
          ? { status: 401, body: { error: { code: 'invalid_client', message: 'expired' }, correlation_id: r.headers['x-correlation-id'] } }
          : { status: 202 },
      () => {
        sessions++
        return { status: 200, body: { client_id: `01JCLIENT000000000000000${sessions}A`, token: `tok-${sessions}` } }
      },
    )
    const client = createClient({ transport, fetch: net.fetch, tracesUrl: false })
    const fx = { optimistic: () => {}, settle: () => {} }
    const h = client.command({ url: '/api/x', body: { a: 1 } }, fx)
    await flush()
    await flush()
    const [first, second] = net.commands()
    expect(first!.headers['x-clicktrace-client']).toBe('tok-1')
    expect(second!.headers['x-clicktrace-client']).toBe('tok-2')
    expect(second!.headers['x-correlation-id']).toBe(h.correlationId)
    expect(second!.body).toEqual({
      ...first!.body,
      metadata: { ...(first!.body!.metadata as object), client_id: '01JCLIENT0000000000000002A' },
    })
    expect(transport.hellos.at(-1)).toEqual({ token: 'tok-2', last_seq: 0 })
    expect(h.status).toBe('pending')
    transport.notify({ correlation_id: h.correlationId, status: 'confirmed' })
    expect(h.status).toBe('confirmed')
    // A second 401 for the same command is its answer: renewed once, not in a loop.
    const again = client.command({ url: '/api/again' }, fx)
    await expect(again.settled).resolves.toMatchObject({ status: 'rejected', error: { code: 'invalid_client' } })
    expect(net.commands().filter((c) => c.url === '/api/again')).toHaveLength(2)
  })
})

describe("the response's trace context", () => {
  const A = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'
  const B = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03'
  const C = '00-11111111111111111111111111111111-2222222222222222-00'
  const read = (h: Record<string, string>) => responseTrace(new Headers(h))
  const ctx = (tp: string) => {
    const [, traceId, spanId] = tp.split('-')
    return { traceId, spanId }
  }

  it('prefers traceresponse, then Server-Timing trace (Level 3 draft), then traceparent (Faro)', () => {
    const timing = `cache;desc="hit";dur=2, traceparent;desc="${C}", trace;desc=${B}`
    expect(read({ traceresponse: A, 'server-timing': timing })).toMatchObject(ctx(A))
    expect(read({ 'server-timing': timing })).toMatchObject(ctx(B))
    expect(read({ 'server-timing': `db;dur=53, traceparent;desc="${C}"` })).toMatchObject({ ...ctx(C), sampled: false })
    expect(read({ traceresponse: 'garbage', 'server-timing': `TRACE ; dur=0;desc = ${B}` })).toMatchObject(ctx(B))
  })

  it('reads nothing from other metrics, malformed values, or past the length bound', () => {
    for (const timing of [
      `xtrace;desc=${A}`,
      `traces;desc=${A}`,
      `cdn;desc=${A}`,
      `trace;desc=00-${'0'.repeat(32)}-b7ad6b7169203331-01`,
      `trace;desc="not a traceparent"`,
      `trace;dur=1, other;desc=${A}`,
      `${'x'.repeat(MAX_SERVER_TIMING_LENGTH)}, trace;desc=${A}`,
      '',
    ]) {
      expect(read({ 'server-timing': timing }), timing.slice(0, 40)).toBeUndefined()
    }
    expect(read({})).toBeUndefined()
  })
})
