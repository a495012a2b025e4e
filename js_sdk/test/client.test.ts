// The framework-free core against a fake transport and a fake fetch: protocol behaviour.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createClient, REJOIN_MS } from '../src/client.js'
import { retryDelay } from '../src/http.js'
import { MAX_SEND_ATTEMPTS } from '../src/protocol.js'
import type { ClicktraceOptions, CommandEffects, CommandRecord } from '../src/types.js'
import { FakeTransport, fakeFetch, flush, type Responder } from './fakes.js'

function setup(options: Partial<ClicktraceOptions> = {}, responder?: Responder) {
  const transport = new FakeTransport()
  const net = fakeFetch(responder)
  const statuses: string[] = []
  const errors: unknown[] = []
  const client = createClient({
    transport,
    fetch: net.fetch,
    tracesUrl: false,
    onStatus: (r) => statuses.push(`${r.name}:${r.status}`),
    onError: (e) => errors.push(e),
    ...options,
  })
  const settles: Array<[string, unknown, boolean]> = []
  const effects: CommandEffects<unknown> = { optimistic: () => {}, settle: (s, d, late) => settles.push([s, d, late]) }
  const send = (url = '/api/x', extra = {}) => client.command({ url, body: { a: 1 }, name: 'x', ...extra }, effects)
  return { client, transport, net, statuses, errors, settles, send }
}

describe('the client core', () => {
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

  it('rejects with session_unavailable when the session cannot be had, and retries next time', async () => {
    let fail = true
    const transport = new FakeTransport()
    const base = fakeFetch()
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
    const transport = new FakeTransport()
    let sessions = 0
    const net = fakeFetch(
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

  it('settles on a notification that arrives before the HTTP response', async () => {
    let release!: () => void
    const gate = new Promise<void>((r) => (release = r))
    const { send, transport, settles } = setup({}, async () => {
      await gate
      return { status: 202, body: { status: 'accepted' } }
    })
    const h = send()
    await flush()
    transport.notify({ correlation_id: h.correlationId, status: 'confirmed', data: { v: 1 } })
    expect(h.status).toBe('confirmed')
    release()
    await flush()
    expect(h.status).toBe('confirmed')
    expect(settles).toEqual([['confirmed', { v: 1 }, false]])
  })

  it('ignores duplicates, progress, unknown ids and malformed notifications', async () => {
    const { send, transport, settles } = setup()
    const h = send()
    await flush()
    transport.raw({ seq: 1, correlation_id: h.correlationId, status: 'progress' })
    transport.raw({ seq: 2, correlation_id: '01JAAAAAAAAAAAAAAAAAAAAAAA', status: 'confirmed' }) // not ours
    for (const bad of [
      null,
      'x',
      [],
      { seq: 'a' },
      { seq: 3, status: 'weird', correlation_id: h.correlationId },
      { seq: 3, status: 'confirmed', correlation_id: 'not-a-ulid' },
      { seq: -1, status: 'confirmed', correlation_id: h.correlationId },
    ]) {
      transport.raw(bad)
    }
    expect(h.status).toBe('pending')
    transport.raw({ seq: 2, correlation_id: h.correlationId, status: 'rejected' }) // seq already seen
    expect(h.status).toBe('pending')
    transport.raw({ seq: 3, correlation_id: h.correlationId, status: 'rejected', error: { code: 7, message: 'x'.repeat(900) } })
    expect(h.record.error).toEqual({ code: 'rejected', message: 'x'.repeat(500) })
    expect(settles).toEqual([['rejected', undefined, false]])
  })

  it('resumes from the last seq when the transport reconnects', async () => {
    const { send, transport } = setup()
    const h = send()
    await flush()
    transport.notify({ correlation_id: h.correlationId, status: 'confirmed' })
    transport.notify({ correlation_id: h.correlationId, status: 'confirmed' })
    expect(transport.handlers!.hello()).toEqual({ token: 'tok-1', last_seq: 2 })
  })

  it('runs every resync hook and continues from the seq the server names', async () => {
    const { client, send, transport, errors } = setup()
    const a = vi.fn()
    const b = vi.fn(() => Promise.reject(new Error('reload failed')))
    client.onResync(a)
    const off = client.onResync(b)
    send()
    await flush()
    transport.raw({ status: 'resync', seq: 41 })
    await flush()
    expect(a).toHaveBeenCalledOnce()
    expect(b).toHaveBeenCalledOnce()
    expect(errors).toEqual([new Error('reload failed')])
    expect(transport.handlers!.hello().last_seq).toBe(41)
    off()
    transport.raw({ status: 'resync', seq: 50 })
    await flush()
    expect(a).toHaveBeenCalledTimes(2)
    expect(b).toHaveBeenCalledOnce()
  })

  it('renews the session before it expires and reconnects as the new client from seq 0', async () => {
    const transport = new FakeTransport()
    let n = 0
    const base = fakeFetch()
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
    const transport = new FakeTransport()
    const presented: Array<string | null> = []
    const base = fakeFetch()
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

  it('gets a new session and reconnects when the server refuses the token, at most every REJOIN_MS', async () => {
    const transport = new FakeTransport()
    let n = 0
    const base = fakeFetch()
    const fetch = (async (u: RequestInfo | URL, i?: RequestInit) => {
      if (!String(u).endsWith('/clicktrace/session')) return base.fetch(u, i)
      n++
      return Response.json({ client_id: `01JCLIENT000000000000000${n}A`, token: `tok-${n}` })
    }) as typeof globalThis.fetch
    const client = createClient({ transport, fetch, tracesUrl: false })
    const h = client.command({ url: '/api/x' }, { optimistic: () => {}, settle: () => {} })
    await flush()
    transport.notify({ correlation_id: h.correlationId, status: 'confirmed' })
    transport.handlers!.state('rejected') // e.g. the server restarted with a new secret
    expect(client.connection.status).toBe('rejected')
    vi.advanceTimersByTime(0)
    await flush()
    expect(n).toBe(2)
    expect(transport.closed).toBe(1)
    expect(transport.hellos).toEqual([
      { token: 'tok-1', last_seq: 0 },
      { token: 'tok-2', last_seq: 0 },
    ])
    transport.handlers!.state('rejected')
    vi.advanceTimersByTime(REJOIN_MS - 1)
    await flush()
    expect(n).toBe(2)
    vi.advanceTimersByTime(1)
    await flush()
    expect(n).toBe(3)
    expect(transport.hellos.at(-1)).toEqual({ token: 'tok-3', last_seq: 0 })
  })

  it('reports every status change and survives a throwing hook or effect', async () => {
    const { client, transport, statuses, errors } = setup({
      onStatus: () => {
        throw new Error('hook')
      },
    })
    const h = client.command(
      { url: '/api/x' },
      {
        optimistic: () => {},
        settle: () => {
          throw new Error('effect')
        },
      },
    )
    await flush()
    transport.notify({ correlation_id: h.correlationId, status: 'confirmed' })
    expect(h.status).toBe('confirmed')
    expect(statuses).toEqual([])
    expect(errors.map((e) => (e as Error).message)).toEqual(['hook', 'effect', 'hook'])
    const s = setup()
    const h2 = s.send()
    await flush()
    s.transport.notify({ correlation_id: h2.correlationId, status: 'confirmed' })
    vi.advanceTimersByTime(20_000)
    expect(s.statuses).toEqual(['x:pending', 'x:confirmed'])
  })

  it('applies a confirmation that arrives after the response was lost (network_error)', async () => {
    const { send, transport, settles } = setup({}, () => {
      throw new TypeError('Failed to fetch')
    })
    const h = send()
    await vi.advanceTimersByTimeAsync(retryDelay(1) + retryDelay(2))
    expect(h.record.error?.code).toBe('network_error')
    transport.notify({ correlation_id: h.correlationId, status: 'confirmed', data: 'd' })
    expect(h.status).toBe('confirmed')
    expect(settles).toEqual([
      ['rejected', undefined, false],
      ['confirmed', 'd', true],
    ])
  })

  it('ignores a confirmation after a rejection by the server', async () => {
    const { send, transport, settles } = setup({}, () => ({ status: 409, body: { error: { code: 'conflict', message: 'no' } } }))
    const h = send()
    await flush()
    transport.notify({ correlation_id: h.correlationId, status: 'confirmed', data: 'd' })
    expect(h.status).toBe('rejected')
    expect(settles).toEqual([['rejected', undefined, false]])
  })

  it('times out at the deadline exactly once, and a late confirmation re-settles with data', async () => {
    const { send, transport, settles, statuses } = setup({ deadlineMs: 3000 })
    const h = send()
    await flush()
    vi.advanceTimersByTime(3000)
    expect(h.record).toMatchObject({
      status: 'timed_out',
      error: { code: 'timed_out', message: 'no outcome within 3000 ms' },
    } satisfies Partial<CommandRecord>)
    transport.notify({ correlation_id: h.correlationId, status: 'rejected' }) // too late to matter
    transport.notify({ correlation_id: h.correlationId, status: 'confirmed', data: 1 })
    transport.notify({ correlation_id: h.correlationId, status: 'confirmed', data: 2 })
    expect(settles).toEqual([
      ['timed_out', undefined, false],
      ['confirmed', 1, true],
    ])
    expect(h.record).toMatchObject({ status: 'confirmed', error: undefined, data: 1 })
    expect(statuses).toEqual(['x:pending', 'x:timed_out', 'x:confirmed'])
  })

  // A projection killed between its commit and its notification tells the tab again on the
  // redelivery, under a new seq: the command settles once, and the repeat changes nothing.
  it('settles a correlation id once: a repeat under a new seq is ignored', async () => {
    const { send, transport, settles } = setup()
    const h = send()
    await flush()
    transport.notify({ correlation_id: h.correlationId, status: 'confirmed', data: { v: 2 } })
    transport.notify({ correlation_id: h.correlationId, status: 'confirmed', data: { v: 2 } })
    transport.notify({ correlation_id: h.correlationId, status: 'rejected', error: { code: 'x', message: 'y' } })
    expect(h.status).toBe('confirmed')
    expect(h.record.data).toEqual({ v: 2 })
    expect(settles).toEqual([['confirmed', { v: 2 }, false]])
  })
})
