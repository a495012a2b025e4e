// Where the client resumes from, through the client core: replay epochs (protocol
// "Notification", contract 6): the client resumes from its last seq in the epoch the server
// named, and a renumbering the server started is a resync, never a skip. And replays across
// reconnects: the server resends from the seq the client names, so a client sees overlapping
// runs; whatever the overlap, each command settles once, with its own outcome.
import fc from 'fast-check'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createClient, REJOIN_MS } from '../src/client.js'
import { MemoryTransport, memoryFetch } from '../src/testing/index.js'
import { flush } from './harness.js'

function setup() {
  const transport = new MemoryTransport()
  const client = createClient({ transport, fetch: memoryFetch().fetch, tracesUrl: false, deadlineMs: 1e9 })
  const resyncs = vi.fn()
  client.onResync(resyncs)
  const send = () => client.command({ url: '/api/x' }, { optimistic: () => {}, settle: () => {} })
  return { client, transport, resyncs, send }
}

describe('replay epochs', () => {
  beforeEach(() => vi.useFakeTimers())
  afterEach(() => vi.useRealTimers())

  it('sends the epoch it last heard with last_seq, and no epoch before it heard one', async () => {
    const { transport, send } = setup()
    const h = send()
    await flush()
    expect(transport.hellos[0]).toEqual({ token: 'tok-1', last_seq: 0 })
    transport.epoch = 'e1'
    transport.confirm(h.correlationId)
    expect(transport.handlers!.hello()).toEqual({ token: 'tok-1', last_seq: 1, epoch: 'e1' })
  })

  it('adopts a new epoch from a notification, forgets the seqs it saw and resyncs', async () => {
    const { transport, resyncs, send } = setup()
    const a = send()
    const b = send()
    await flush()
    transport.epoch = 'before-restart'
    transport.notify({ correlation_id: '01JAAAAAAAAAAAAAAAAAAAAAAA', status: 'progress' })
    transport.notify({ correlation_id: '01JAAAAAAAAAAAAAAAAAAAAAAA', status: 'progress' })
    transport.confirm(a.correlationId)
    // The server restarted with a memory buffer: it numbers from 1 again, in a new epoch.
    transport.epoch = 'after-restart'
    transport.seq = 0
    transport.confirm(b.correlationId) // seq 1 <= 3, yet new: delivered
    expect(b.status).toBe('confirmed')
    await flush()
    expect(resyncs).toHaveBeenCalledOnce()
    expect(transport.handlers!.hello()).toEqual({ token: 'tok-1', last_seq: 1, epoch: 'after-restart' })
    transport.raw({ seq: 1, epoch: 'after-restart', correlation_id: b.correlationId, status: 'rejected' }) // a replay
    expect(b.status).toBe('confirmed')
  })

  it('takes seq and epoch from a resync frame, and treats frames without an epoch as an older server does', async () => {
    const { transport, resyncs, send } = setup()
    const h = send()
    await flush()
    transport.raw({ status: 'resync', seq: 9, epoch: 'e2' })
    await flush()
    expect(resyncs).toHaveBeenCalledOnce()
    expect(transport.handlers!.hello()).toEqual({ token: 'tok-1', last_seq: 9, epoch: 'e2' })
    transport.raw({ seq: 9, correlation_id: h.correlationId, status: 'confirmed' }) // no epoch, seen seq
    expect(h.status).toBe('pending')
    transport.raw({ seq: 10, correlation_id: h.correlationId, status: 'confirmed' })
    expect(h.status).toBe('confirmed')
    expect(resyncs).toHaveBeenCalledOnce()
  })

  it('drops frames whose epoch is not a short string', async () => {
    const { transport, send } = setup()
    const h = send()
    await flush()
    for (const epoch of [7, null, {}, 'x'.repeat(65)])
      transport.raw({ seq: 1, epoch, correlation_id: h.correlationId, status: 'confirmed' })
    expect(h.status).toBe('pending')
    expect(transport.handlers!.hello()).toEqual({ token: 'tok-1', last_seq: 0 })
  })

  it('keeps the epoch for the same client across a renewal, and forgets it with a new client', async () => {
    const transport = new MemoryTransport()
    let n = 0
    const ids = ['01JCLIENT0000000000000001A', '01JCLIENT0000000000000001A', '01JCLIENT0000000000000002A']
    const net = memoryFetch(undefined, () => ({ status: 200, body: { client_id: ids[n], token: `tok-${++n}` } }))
    const client = createClient({ transport, fetch: net.fetch, tracesUrl: false, deadlineMs: 1e9 })
    const h = client.command({ url: '/api/x' }, { optimistic: () => {}, settle: () => {} })
    await flush()
    transport.epoch = 'e1'
    transport.confirm(h.correlationId)
    transport.state('rejected')
    await vi.advanceTimersByTimeAsync(0)
    expect(transport.hellos.at(-1)).toEqual({ token: 'tok-2', last_seq: 1, epoch: 'e1' })
    transport.state('rejected')
    await vi.advanceTimersByTimeAsync(REJOIN_MS)
    expect(transport.hellos.at(-1)).toEqual({ token: 'tok-3', last_seq: 0 })
  })
})

describe('seq handling under replays', () => {
  it('resumes from the last seq seen and settles each command once, in seq order, whatever the overlap', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.constantFrom('confirmed' as const, 'rejected' as const), { minLength: 1, maxLength: 12 }),
        fc.array(fc.nat(30), { maxLength: 8 }),
        async (outcomes, cuts) => {
          const transport = new MemoryTransport()
          const client = createClient({ transport, fetch: memoryFetch().fetch, tracesUrl: false, deadlineMs: 1e9 })
          const settled: Array<[number, string]> = []
          const handles = outcomes.map((_, i) =>
            client.command({ url: '/api/x' }, { optimistic: () => {}, settle: (s) => settled.push([i, s]) }),
          )
          await flush()
          const log = outcomes.map((status, i) => ({ seq: i + 1, status, correlation_id: handles[i]!.correlationId }))
          // Deliver the log; at each cut the connection drops and the server replays from
          // what the client says it has seen, possibly after re-sending some already delivered.
          let next = 0
          for (const cut of cuts) {
            const until = Math.min(log.length, next + (cut % 5))
            for (; next < until; next++) transport.raw(log[next])
            const resumeFrom = transport.handlers!.hello().last_seq
            next = Math.max(0, resumeFrom - (cut % 3)) // the server may overlap what was seen
          }
          for (; next < log.length; next++) transport.raw(log[next])
          expect(settled).toEqual(outcomes.map((s, i) => [i, s]))
          expect(handles.map((h) => h.status)).toEqual(outcomes)
          expect(transport.handlers!.hello().last_seq).toBe(outcomes.length)
        },
      ),
      { numRuns: 200 },
    )
  })
})
