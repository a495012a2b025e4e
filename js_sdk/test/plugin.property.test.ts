// Any interleaving of clicks, confirmations, rejections (notified or HTTP 422), deadlines, late
// confirmations and authoritative reloads ends in the state the server holds plus the
// still-pending optimistic changes, with every handle showing the right status.
import fc from 'fast-check'
import { createPinia, defineStore, setActivePinia } from 'pinia'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { createApp } from 'vue'
import { type CommandHandle, type CommandStatus, createClicktrace } from '../src/index.js'
import { MemoryTransport, memoryFetch } from '../src/testing/index.js'
import { flush } from './harness.js'

interface Product {
  id: number
  name: string
  version: number
}

const op = fc.oneof(
  fc.record({
    t: fc.constant('click' as const),
    id: fc.constantFrom(1, 2, 3),
    name: fc.constantFrom('', 'a', 'b', 'c'),
    deadline: fc.constantFrom(1000, 2000, 5000),
  }),
  fc.record({ t: fc.constantFrom('confirm' as const, 'reject' as const), pick: fc.nat(50) }),
  fc.record({ t: fc.constant('tick' as const), ms: fc.constantFrom(500, 1000, 3000) }),
  fc.record({ t: fc.constant('reload' as const) }),
  fc.record({ t: fc.constant('resync' as const) }),
  // Another tab renames a product: the server changes, this tab learns it only from a later
  // confirmation of that product, a reload, or a resync.
  fc.record({ t: fc.constant('elsewhere' as const), id: fc.constantFrom(1, 2, 3), name: fc.constantFrom('x', 'y') }),
)

describe('store state under any interleaving', () => {
  afterEach(() => vi.useRealTimers())

  it('is the server state with the pending changes replayed, and statuses match', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 30 }), async (ops) => {
        vi.useFakeTimers()
        const server = new Map<number, Product>([1, 2, 3].map((id) => [id, { id, name: `p${id}`, version: 1 }]))
        const transport = new MemoryTransport()
        // The API refuses an empty name at once, like the demo's 422 invalid_name.
        const net = memoryFetch((r) =>
          r.body!.name === '' ? { status: 422, body: { error: { code: 'invalid_name', message: 'empty' } } } : { status: 202 },
        )
        const pinia = createPinia()
        pinia.use(createClicktrace({ transport, fetch: net.fetch, tracesUrl: false }))
        createApp({}).use(pinia)
        setActivePinia(pinia)
        const store = defineStore('p', {
          state: () => ({ products: [...server.values()].map((p) => ({ ...p })) }),
          actions: {
            rename(id: number, name: string, deadlineMs: number): CommandHandle<Product> {
              return this.$command({
                url: `/api/products/${id}/rename`,
                body: { name },
                entity: id,
                deadlineMs,
                optimistic: (s) => {
                  s.products.find((p) => p.id === id)!.name = name
                },
                authoritative: (s, d: Product) => {
                  s.products[s.products.findIndex((p) => p.id === d.id)] = d
                },
              })
            },
          },
          // The server could not replay: reload authoritative state, as an app would over HTTP.
          clicktrace: {
            resync() {
              this.$authoritative((s) => {
                s.products = [...server.values()].map((p) => ({ ...p }))
              })
            },
          },
        })()
        // What this tab has been told is authoritative.
        const known = new Map([...server].map(([id, p]) => [id, { ...p }]))
        const model: Array<{
          id: number
          name: string
          handle: CommandHandle<Product>
          status: CommandStatus
          at: number
          refused: boolean
        }> = []
        let now = 0
        for (const o of ops) {
          if (o.t === 'click') {
            const handle = store.rename(o.id, o.name, o.deadline)
            model.push({
              id: o.id,
              name: o.name,
              handle,
              status: o.name === '' ? 'rejected' : 'pending',
              at: now + o.deadline,
              refused: o.name === '',
            })
          } else if (o.t === 'tick') {
            vi.advanceTimersByTime(o.ms)
            now += o.ms
            for (const m of model) if (m.status === 'pending' && m.at <= now) m.status = 'timed_out'
          } else if (o.t === 'elsewhere') {
            const p = server.get(o.id)!
            server.set(o.id, { ...p, name: o.name, version: p.version + 1 })
          } else if (o.t === 'resync') {
            if (!transport.handlers) continue // only a connected tab hears it
            transport.resync()
            for (const [id, p] of server) known.set(id, { ...p })
          } else if (o.t === 'reload') {
            store.$authoritative((s) => {
              s.products = [...server.values()].map((p) => ({ ...p }))
            })
            for (const [id, p] of server) known.set(id, { ...p })
          } else {
            // The server settles a command it accepted and has not settled yet (the client may have given up on it).
            const open = model.filter((m) => !m.refused && (m.status === 'pending' || m.status === 'timed_out'))
            const m = open[o.pick % Math.max(1, open.length)]
            if (!m) continue
            m.refused = true // settled on the server: never twice
            if (o.t === 'confirm') {
              const p = server.get(m.id)!
              const next = { ...p, name: m.name, version: p.version + 1 }
              server.set(m.id, next)
              known.set(m.id, { ...next })
              transport.notify({ correlation_id: m.handle.correlationId, status: 'confirmed', data: next })
              m.status = 'confirmed'
            } else {
              transport.notify({ correlation_id: m.handle.correlationId, status: 'rejected', error: { code: 'name_taken', message: '' } })
              if (m.status === 'pending') m.status = 'rejected'
            }
          }
          await flush()
          const expected = [...known.values()].map((p) => ({ ...p }))
          for (const m of model) if (m.status === 'pending') expected.find((p) => p.id === m.id)!.name = m.name
          expect(store.products).toEqual(expected)
          expect(model.map((m) => m.handle.status)).toEqual(model.map((m) => m.status))
          expect(store.$clicktrace.pending.map((r) => r.correlationId)).toEqual(
            model.filter((m) => m.status === 'pending').map((m) => m.handle.correlationId),
          )
        }
        vi.useRealTimers()
      }),
      { numRuns: 150 },
    )
  })
})
