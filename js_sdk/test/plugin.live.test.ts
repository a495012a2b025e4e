// Live updates in a store: the topics it declares are watched at creation (and again at every
// reconnect, from where each left off), an update goes through the authoritative path with
// pending optimistic changes on top, and versions keep anything older from overwriting a newer
// state, the tab's own late confirmation included.
import { createPinia, defineStore, setActivePinia } from 'pinia'
import { describe, expect, it, vi } from 'vitest'
import { createApp } from 'vue'
import { type CommandHandle, createClicktrace } from '../src/index.js'
import { MAX_VERSIONS } from '../src/plugin.js'
import { MemoryTransport, memoryFetch } from '../src/testing/index.js'
import { setup as core, flush } from './harness.js'

interface Seat {
  id: number
  holder: string | null
}

function setup() {
  const transport = new MemoryTransport()
  const net = memoryFetch()
  const errors: unknown[] = []
  const resync = vi.fn()
  const pinia = createPinia()
  pinia.use(createClicktrace({ transport, fetch: net.fetch, tracesUrl: false, onError: (e) => errors.push(e) }))
  createApp({}).use(pinia)
  setActivePinia(pinia)
  const useSeats = defineStore('seats', {
    state: () => ({ seats: [] as Seat[] }),
    actions: {
      hold(id: number, who: string): CommandHandle<Seat> {
        return this.$command({
          url: `/api/seats/${id}/hold`,
          entity: `seat:${id}`,
          optimistic: (s) => {
            const seat = s.seats.find((x) => x.id === id)
            if (seat) seat.holder = who
          },
          authoritative: (s, seat: Seat) => upsert(s.seats, seat),
        })
      },
    },
    clicktrace: {
      topics: ['seats'],
      live(s, seat: Seat) {
        upsert(s.seats, seat)
      },
      resync,
    },
  })
  const store = useSeats()
  return { store, transport, errors, resync }
}

function upsert(seats: Seat[], seat: Seat): void {
  const i = seats.findIndex((x) => x.id === seat.id)
  if (i < 0) seats.push(seat)
  else seats[i] = seat
}

const holders = (s: { seats: Seat[] }) => s.seats.map((x) => `${x.id}:${x.holder ?? '-'}`)

describe('a store with topics', () => {
  it('watches them at creation and applies every update', async () => {
    const { store, transport } = setup()
    await flush()
    expect(transport.sent).toEqual([{ watch: 'seats', seq: 0 }])
    transport.update('seats', { id: 1, holder: null }, { version: 1, key: 'seat:1' })
    transport.update('seats', { id: 2, holder: 'bob' }, { version: 1, key: 'seat:2' })
    expect(holders(store)).toEqual(['1:-', '2:bob'])
  })

  it('keeps a pending optimistic change on top of an update, then settles it', async () => {
    const { store, transport } = setup()
    await flush()
    transport.update('seats', { id: 1, holder: null }, { version: 1, key: 'seat:1' })
    const h = store.hold(1, 'me')
    transport.update('seats', { id: 2, holder: 'bob' }, { version: 1, key: 'seat:2' })
    expect(holders(store)).toEqual(['1:me', '2:bob'])
    await flush()
    transport.confirm(h.correlationId, { id: 1, holder: 'me' }, { version: 2 })
    expect(holders(store)).toEqual(['1:me', '2:bob'])
    expect(store.$clicktrace.pending).toEqual([])
  })

  it('never lets an older update overwrite a newer one', async () => {
    const { store, transport } = setup()
    await flush()
    transport.update('seats', { id: 1, holder: 'ann' }, { version: 5, key: 'seat:1' })
    transport.update('seats', { id: 1, holder: 'bob' }, { version: 4, key: 'seat:1' })
    expect(holders(store)).toEqual(['1:ann'])
    transport.update('seats', { id: 1, holder: null }, { version: 6, key: 'seat:1' })
    expect(holders(store)).toEqual(['1:-'])
  })

  it('remembers at most MAX_VERSIONS keys, forgetting the longest-known first', async () => {
    const { store, transport } = setup()
    await flush()
    transport.update('seats', { id: 0, holder: 'old' }, { version: 5, key: 'seat:0' })
    // Many keys (one small row, so the test stays fast): the first key is forgotten.
    for (let i = 1; i <= MAX_VERSIONS; i++) transport.update('seats', { id: 1, holder: null }, { version: 1, key: `k${i}` })
    transport.update('seats', { id: 0, holder: 'older' }, { version: 4, key: 'seat:0' }) // forgotten: applies
    expect(store.seats[0]).toEqual({ id: 0, holder: 'older' })
    transport.update('seats', { id: 1, holder: 'stale' }, { version: 1, key: 'k2' }) // still known
    expect(store.seats[1]).toEqual({ id: 1, holder: null })
  })

  it("drops the tab's own confirmation when a newer update of its entity came first", async () => {
    const { store, transport } = setup()
    await flush()
    transport.update('seats', { id: 1, holder: null }, { version: 1, key: 'seat:1' })
    const h = store.hold(1, 'me')
    await flush()
    // Another tab's change of the same seat was done after ours and is broadcast first.
    transport.update('seats', { id: 1, holder: 'bob' }, { version: 3, key: 'seat:1' })
    expect(holders(store)).toEqual(['1:me']) // ours still pending, on top
    transport.confirm(h.correlationId, { id: 1, holder: 'me' }, { version: 2 }) // key: the entity
    expect(h.status).toBe('confirmed')
    expect(holders(store)).toEqual(['1:bob']) // the newer state, not our older confirmation
  })

  it('the loser of a race sees the winner', async () => {
    const { store, transport } = setup()
    await flush()
    transport.update('seats', { id: 1, holder: null }, { version: 1, key: 'seat:1' })
    const h = store.hold(1, 'me')
    await flush()
    transport.update('seats', { id: 1, holder: 'bob' }, { version: 2, key: 'seat:1' })
    transport.reject(h.correlationId, 'seat_taken', 'taken')
    expect(holders(store)).toEqual(['1:bob'])
  })

  it('watches again from where each topic left off after a reconnect', async () => {
    const { transport } = setup()
    transport.epoch = 'E1'
    await flush()
    transport.update('seats', { id: 1, holder: null })
    transport.update('seats', { id: 1, holder: 'x' })
    transport.state('disconnected')
    transport.state('connected')
    expect(transport.sent.at(-1)).toEqual({ watch: 'seats', seq: 2, epoch: 'E1' })
  })

  it('runs the resync hook when the server cannot replay a topic', async () => {
    const { transport, resync } = setup()
    await flush()
    transport.raw({ status: 'resync', topic: 'seats', seq: 9, epoch: 'E2' })
    await flush()
    expect(resync).toHaveBeenCalledTimes(1)
    transport.state('connected')
    expect(transport.sent.at(-1)).toEqual({ watch: 'seats', seq: 9, epoch: 'E2' })
  })

  it('reports a refused watch as a failure to fix', async () => {
    const { transport, errors } = setup()
    await flush()
    transport.raw({ status: 'refused', topic: 'seats', error: { code: 'forbidden_topic', message: 'no' } })
    expect(errors).toMatchObject([{ code: 'forbidden_topic' }])
    transport.raw({ status: 'refused', topic: 'unknown', error: { code: 'forbidden_topic', message: 'no' } })
    expect(errors).toHaveLength(1) // only topics this tab watches
  })

  it('ignores malformed topic frames', async () => {
    const { store, transport } = setup()
    await flush()
    transport.raw({ status: 'update', topic: 'seats', seq: 'one', data: { id: 1 } })
    transport.raw({ status: 'update', topic: 'seats', seq: 1 }) // no correlation id
    transport.raw({ status: 'update', topic: 'other', seq: 1, correlation_id: '01J0000000000000000000000A', data: { id: 1 } })
    expect(holders(store)).toEqual([])
  })
})

describe('$watchTopic', () => {
  it('watches a topic now and unwatches it when the last watcher leaves', async () => {
    const { store, transport } = setup()
    await flush()
    const stop = store.$watchTopic('seats:hall-b')
    expect(transport.watched()).toEqual(['seats', 'seats:hall-b'])
    transport.update('seats:hall-b', { id: 7, holder: 'zoe' })
    expect(holders(store)).toEqual(['7:zoe'])
    stop()
    stop() // idempotent
    expect(transport.watched()).toEqual(['seats'])
    transport.update('seats:hall-b', { id: 8, holder: 'zoe' })
    expect(holders(store)).toEqual(['7:zoe'])
  })

  it('without a live hook, the update is a part of the state', async () => {
    const transport = new MemoryTransport()
    const pinia = createPinia()
    pinia.use(createClicktrace({ transport, fetch: memoryFetch().fetch, tracesUrl: false }))
    createApp({}).use(pinia)
    setActivePinia(pinia)
    const store = defineStore('count', { state: () => ({ n: 0, label: 'x' }) })()
    store.$watchTopic('count')
    await flush()
    transport.update('count', { n: 3 })
    expect(store.$state).toEqual({ n: 3, label: 'x' })
  })
})

describe('the client', () => {
  it('connects to watch a topic, also after it was closed', async () => {
    const { client, transport } = core()
    client.watch('seats', () => {})
    await flush()
    expect(transport.hellos).toHaveLength(1)
    expect(transport.watched()).toEqual(['seats'])
    client.close()
    client.watch('orders', () => {})
    await flush()
    expect(transport.hellos).toHaveLength(2) // connected again, every topic watched again
    expect(transport.sent.slice(-2)).toEqual([
      { watch: 'seats', seq: 0 },
      { watch: 'orders', seq: 0 },
    ])
  })
})
