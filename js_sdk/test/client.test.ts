// The framework-free core against the in-memory transport and fetch: commands, notifications,
// deadlines, resyncs and status reports (the HTTP hop and the session have their own files).
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createClient, REJOIN_MS } from '../src/client.js'
import { retryDelay } from '../src/http.js'
import { MemoryTransport, memoryFetch } from '../src/testing/index.js'
import type { CommandRecord } from '../src/types.js'
import { flush, setup } from './harness.js'

describe('the client core', () => {
  beforeEach(() => vi.useFakeTimers())
  afterEach(() => vi.useRealTimers())

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

  it('sends the POST within the click once the session and the transport are set up', async () => {
    const { send, net } = setup()
    send()
    expect(net.commands()).toHaveLength(0) // the first click waits for its session
    await flush()
    expect(net.commands()).toHaveLength(1)
    send()
    // Before any await: the page's render of the pending state does not go first.
    expect(net.commands()).toHaveLength(2)
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

  it('gets a new session and reconnects when the server refuses the token, at most every REJOIN_MS', async () => {
    const transport = new MemoryTransport()
    let n = 0
    const base = memoryFetch()
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

  it('takes a confirmation after a dead letter (an operator sent the command again)', async () => {
    const { send, transport, settles } = setup()
    const h = send()
    await flush()
    transport.notify({ correlation_id: h.correlationId, status: 'rejected', error: { code: 'processing_failed', message: 'no' } })
    expect(h.status).toBe('rejected')
    transport.notify({ correlation_id: h.correlationId, status: 'confirmed', data: 'd' })
    expect(h.record).toMatchObject({ status: 'confirmed', error: undefined, data: 'd' })
    expect(settles).toEqual([
      ['rejected', undefined, false],
      ['confirmed', 'd', true],
    ])
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
