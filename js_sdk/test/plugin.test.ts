import { createPinia, defineStore, setActivePinia } from 'pinia'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createApp } from 'vue'
import { type CommandHandle, createClicktrace } from '../src/index.js'
import { MemoryTransport, memoryFetch, type Responder } from '../src/testing/index.js'
import { flush } from './harness.js'

interface Product {
  id: number
  name: string
  price: number
  version: number
}

function setup(responder?: Responder, extra: Partial<Parameters<typeof createClicktrace>[0]> = {}) {
  const transport = new MemoryTransport()
  const net = memoryFetch(responder)
  const pinia = createPinia()
  const resync = vi.fn()
  pinia.use(createClicktrace({ transport, fetch: net.fetch, tracesUrl: false, ...extra }))
  createApp({}).use(pinia)
  setActivePinia(pinia)
  const useProducts = defineStore('products', {
    state: () => ({ products: [] as Product[], busy: false }),
    actions: {
      load() {
        this.$authoritative((s) => {
          s.products = [
            { id: 1, name: 'Desk', price: 10, version: 1 },
            { id: 2, name: 'Lamp', price: 5, version: 1 },
          ]
        })
      },
      rename(id: number, name: string): CommandHandle<Product> {
        return this.$command({
          url: `/api/products/${id}/rename`,
          body: { name },
          entity: id,
          name: 'rename',
          optimistic: (s) => {
            const p = s.products.find((x) => x.id === id)
            if (p) p.name = name
          },
          authoritative: (s, data: Product) => {
            const i = s.products.findIndex((x) => x.id === data.id)
            if (i >= 0) s.products[i] = data
          },
        })
      },
    },
    clicktrace: {
      resync() {
        resync()
        this.load()
      },
    },
  })
  const store = useProducts()
  store.load()
  return { store, transport, net, resync }
}

const names = (s: { products: Product[] }) => s.products.map((p) => p.name)

describe('a command from a store action', () => {
  beforeEach(() => vi.useFakeTimers())
  afterEach(() => vi.useRealTimers())

  it('applies the change at once, sends ids in headers and metadata, and confirms', async () => {
    const { store, transport, net } = setup()
    const h = store.rename(1, 'Table')
    expect(names(store)).toEqual(['Table', 'Lamp'])
    expect(h.status).toBe('pending')
    expect(store.$clicktrace.isPending(1)).toBe(true)
    expect(store.$clicktrace.isPending(2)).toBe(false)
    expect(h.correlationId).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/)
    await flush()
    const [session] = net.sent
    expect(session!.url).toBe('/clicktrace/session')
    expect(session!.method).toBe('POST')
    expect(transport.hellos).toEqual([{ token: 'tok-1', last_seq: 0 }])
    const [cmd] = net.commands()
    // The request carries its HTTP CLIENT span's context: the click's trace, another span.
    const [, trace, action, flags] = h.traceparent.split('-')
    expect(h.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-03$/)
    expect(cmd!.headers.traceparent).toMatch(new RegExp(`^00-${trace}-(?!${action})[0-9a-f]{16}-${flags}$`))
    expect(cmd!.headers['x-correlation-id']).toBe(h.correlationId)
    expect(cmd!.headers['x-clicktrace-client']).toBe('tok-1')
    const meta = cmd!.body!.metadata as Record<string, unknown>
    expect(cmd!.body!.name).toBe('Table')
    expect(meta.correlation_id).toBe(h.correlationId)
    expect(meta.client_id).toBe('01JCLIENT0000000000000000A')
    expect(meta.deadline).toBe(Date.now() + 15_000)
    transport.notify({
      correlation_id: h.correlationId,
      status: 'confirmed',
      type: 'ProductRenamed',
      data: { id: 1, name: 'Table', price: 10, version: 2 },
    })
    expect(h.status).toBe('confirmed')
    expect(store.products[0]).toEqual({ id: 1, name: 'Table', price: 10, version: 2 })
    expect(store.$clicktrace.entity(1)?.status).toBe('confirmed')
    await expect(h.settled).resolves.toMatchObject({ status: 'confirmed', correlationId: h.correlationId })
  })

  it('rolls back on a rejected notification, keeping the error and correlation id', async () => {
    const { store, transport } = setup()
    const h = store.rename(1, 'Lamp')
    await flush()
    transport.notify({ correlation_id: h.correlationId.toLowerCase(), status: 'rejected', error: { code: 'name_taken', message: 'taken' } })
    expect(names(store)).toEqual(['Desk', 'Lamp'])
    expect(store.$clicktrace.last).toMatchObject({
      status: 'rejected',
      error: { code: 'name_taken', message: 'taken' },
      correlationId: h.correlationId,
    })
  })

  it('takes the authoritative data a rejection carries', async () => {
    const { store, transport } = setup()
    const h = store.rename(1, 'Lamp')
    await flush()
    transport.notify({
      correlation_id: h.correlationId,
      status: 'rejected',
      error: { code: 'name_taken', message: '' },
      data: { id: 1, name: 'Desk (by another tab)', price: 10, version: 3 },
    })
    expect(store.products[0]).toEqual({ id: 1, name: 'Desk (by another tab)', price: 10, version: 3 })
    expect(h.status).toBe('rejected')
  })

  it('rolls back at once on a 4xx, reading the error body', async () => {
    const { store } = setup(() => ({ status: 422, body: { error: { code: 'invalid_name', message: 'empty' }, correlation_id: 'x' } }))
    const h = store.rename(1, '')
    expect(names(store)).toEqual(['', 'Lamp'])
    const out = await h.settled
    expect(out).toMatchObject({ status: 'rejected', error: { code: 'invalid_name', message: 'empty' } })
    expect(names(store)).toEqual(['Desk', 'Lamp'])
  })

  it('times out at the deadline, then applies a late confirmation', async () => {
    const { store, transport } = setup(undefined, { deadlineMs: 1000 })
    const h = store.rename(1, 'Table')
    await flush()
    vi.advanceTimersByTime(999)
    expect(h.status).toBe('pending')
    vi.advanceTimersByTime(1)
    expect(h.status).toBe('timed_out')
    expect(names(store)).toEqual(['Desk', 'Lamp'])
    transport.notify({ correlation_id: h.correlationId, status: 'confirmed', data: { id: 1, name: 'Table', price: 10, version: 2 } })
    expect(names(store)).toEqual(['Table', 'Lamp'])
    expect(h.status).toBe('confirmed')
    await expect(h.settled).resolves.toMatchObject({ status: 'timed_out' })
  })

  it('keeps a second pending change to the same entity when the first is rejected', async () => {
    const { store, transport } = setup()
    const a = store.rename(1, 'A')
    const b = store.rename(1, 'B')
    await flush()
    transport.notify({ correlation_id: a.correlationId, status: 'rejected', error: { code: 'name_taken', message: '' } })
    expect(names(store)).toEqual(['B', 'Lamp'])
    transport.notify({ correlation_id: b.correlationId, status: 'confirmed', data: { id: 1, name: 'B', price: 10, version: 2 } })
    expect(names(store)).toEqual(['B', 'Lamp'])
    expect(store.$clicktrace.pending).toEqual([])
  })

  it('runs the store resync hook on a resync notification', async () => {
    const { store, transport, resync } = setup()
    store.rename(1, 'X')
    await flush()
    transport.raw({ status: 'resync', seq: 40 })
    await flush()
    expect(resync).toHaveBeenCalledOnce()
  })
})
