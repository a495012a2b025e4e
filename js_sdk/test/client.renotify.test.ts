// A server that re-sends an outcome (a projection killed between its commit and its
// notification tells the tab again on the redelivery, under a new seq): the command settles
// once, and the repeat changes nothing.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createClient } from '../src/client.js'
import type { CommandEffects } from '../src/types.js'
import { FakeTransport, fakeFetch, flush } from './fakes.js'

function setup() {
  const transport = new FakeTransport()
  const client = createClient({ transport, fetch: fakeFetch().fetch, tracesUrl: false })
  const settles: Array<[string, unknown, boolean]> = []
  const effects: CommandEffects<unknown> = { optimistic: () => {}, settle: (s, d, late) => settles.push([s, d, late]) }
  const send = () => client.command({ url: '/api/x', body: { a: 1 }, name: 'x' }, effects)
  return { transport, settles, send }
}

describe('a re-sent outcome', () => {
  beforeEach(() => vi.useFakeTimers())
  afterEach(() => vi.useRealTimers())

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
