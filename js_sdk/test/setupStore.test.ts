// Setup stores through useCommands(): the same optimistic/confirm/reject cycle, rebase and
// resync as an options store, over the refs the setup function names.
import { createPinia, defineStore, setActivePinia } from 'pinia'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createApp, ref } from 'vue'
import { createClicktrace, useCommands } from '../src/index.js'
import { MemoryTransport, memoryFetch } from '../src/testing/index.js'
import { flush } from './harness.js'

interface Seat {
  id: number
  holder: string | null
}

function setup(extra: Partial<Parameters<typeof createClicktrace>[0]> = {}) {
  const transport = new MemoryTransport()
  const net = memoryFetch()
  const pinia = createPinia()
  pinia.use(createClicktrace({ transport, fetch: net.fetch, tracesUrl: false, ...extra }))
  createApp({}).use(pinia)
  setActivePinia(pinia)
  const resyncs = vi.fn()
  const useSeats = defineStore('seats', () => {
    const seats = ref<Seat[]>([])
    const title = ref('Hall A')
    const { command, authoritative, commands } = useCommands({ seats }, { resync: load, deadlineMs: 4000 })
    function load() {
      resyncs()
      authoritative((s) => {
        s.seats = [
          { id: 1, holder: null },
          { id: 2, holder: null },
        ]
      })
    }
    function hold(id: number, who: string) {
      return command({
        url: `/api/seats/${id}/hold`,
        entity: id,
        optimistic: (s) => {
          const seat = s.seats.find((x) => x.id === id)
          if (seat) seat.holder = who
        },
        authoritative: (s, data: Seat) => {
          s.seats = s.seats.map((x) => (x.id === data.id ? data : x))
        },
      })
    }
    return { seats, title, commands, load, hold }
  })
  const store = useSeats()
  return { store, transport, net, resyncs }
}

const holders = (s: { seats: Seat[] }) => s.seats.map((x) => x.holder)

describe('useCommands (setup stores)', () => {
  beforeEach(() => vi.useFakeTimers())
  afterEach(() => vi.useRealTimers())

  it('applies the change at once and confirms it with the authoritative data', async () => {
    const { store, transport, net } = setup()
    store.load()
    const h = store.hold(1, 'ann')
    expect(holders(store)).toEqual(['ann', null])
    expect(store.commands.isPending(1)).toBe(true)
    await flush()
    expect(net.commands()[0]!.url).toBe('/api/seats/1/hold')
    expect(net.commands()[0]!.headers['x-clicktrace-deadline']).toBe(String(Date.now() + 4000))
    transport.confirm(h.correlationId, { id: 1, holder: 'ann (confirmed)' })
    expect(h.status).toBe('confirmed')
    expect(holders(store)).toEqual(['ann (confirmed)', null])
    expect(store.commands.last).toMatchObject({ status: 'confirmed', entity: '1' })
    expect(store.title).toBe('Hall A') // refs it was not given are not its business
  })

  it('rolls a rejected change back and keeps pending ones on top of newer authoritative state', async () => {
    const { store, transport } = setup()
    store.load()
    const a = store.hold(1, 'ann')
    const b = store.hold(2, 'bob')
    await flush()
    transport.reject(a.correlationId, 'seat_taken')
    expect(holders(store)).toEqual([null, 'bob'])
    store.load() // a newer list from the server: bob's pending hold is replayed on it
    expect(holders(store)).toEqual([null, 'bob'])
    expect(store.commands.pending.map((r) => r.correlationId)).toEqual([b.correlationId])
    expect(store.commands.connection).toBe('connected')
  })

  it('runs its resync hook when the server cannot replay', async () => {
    const { store, transport, resyncs } = setup()
    store.hold(1, 'ann')
    await flush()
    resyncs.mockClear()
    transport.resync()
    await flush()
    expect(resyncs).toHaveBeenCalledOnce()
  })

  it('hears a resync before its first command (bound right after the setup function)', async () => {
    const { transport, resyncs } = setup({ prewarm: true })
    await flush()
    expect(transport.hellos).toHaveLength(1)
    transport.resync()
    await flush()
    expect(resyncs).toHaveBeenCalledOnce()
  })

  it('says what is missing when no clicktrace plugin is installed', () => {
    const pinia = createPinia()
    setActivePinia(pinia)
    const useBare = defineStore('bare', () => {
      const n = ref(0)
      const { command } = useCommands({ n })
      return { n, go: () => command({ url: '/api/x' }) }
    })
    expect(() => useBare().go()).toThrow(/pinia\.use\(createClicktrace/)
  })
})
