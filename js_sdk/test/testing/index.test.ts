// The testing kit as a user's vitest suite would use it: a store under test, the in-memory
// transport and fetch from `clicktrace-pinia/testing`, and the opt-in window test hook.
import { createPinia, defineStore, setActivePinia } from 'pinia'
import { afterEach, describe, expect, it } from 'vitest'
import { createApp } from 'vue'
import { createClicktrace } from '../../src/index.js'
import { exposeTestHook, memoryFetch, memoryTransport, type TestHook } from '../../src/testing/index.js'
import { flush } from '../harness.js'

const useTodos = defineStore('todos', {
  state: () => ({ titles: ['milk'] }),
  actions: {
    add(title: string) {
      return this.$command({
        url: '/api/todos',
        body: { title },
        name: 'add',
        optimistic: (s) => void s.titles.push(title),
        authoritative: (s, data: string[]) => {
          s.titles = data
        },
      })
    },
  },
})

function setup(testHook?: string) {
  const transport = memoryTransport()
  const server = memoryFetch()
  const pinia = createPinia()
  pinia.use(
    createClicktrace({
      transport,
      fetch: server.fetch,
      ...(testHook === undefined ? { tracesUrl: false } : { testHook: exposeTestHook(testHook || undefined) }),
    }),
  )
  createApp({}).use(pinia)
  setActivePinia(pinia)
  return { transport, server, store: useTodos() }
}

const hook = (name = '__clicktrace'): TestHook => (globalThis as unknown as Record<string, TestHook>)[name]!

describe('clicktrace-pinia/testing', () => {
  afterEach(() => {
    delete (globalThis as Record<string, unknown>).__clicktrace
  })

  it('pushes a confirmation with data into the store under test', async () => {
    const { transport, server, store } = setup()
    const h = store.add('eggs')
    expect(store.titles).toEqual(['milk', 'eggs'])
    await flush()
    expect(server.commands()[0]!.body).toMatchObject({ title: 'eggs', metadata: { correlation_id: h.correlationId } })
    transport.confirm(h.correlationId, ['milk', 'eggs (2)'])
    expect(store.titles).toEqual(['milk', 'eggs (2)'])
    expect(store.$clicktrace.last?.status).toBe('confirmed')
  })

  it('pushes a rejection, and a resync', async () => {
    const { transport, store } = setup()
    const h = store.add('eggs')
    await flush()
    transport.reject(h.correlationId, 'duplicate', 'already on the list')
    expect(store.titles).toEqual(['milk'])
    expect(store.$clicktrace.last?.error).toEqual({ code: 'duplicate', message: 'already on the list' })
    expect(() => transport.resync()).not.toThrow()
    expect(() => memoryTransport().confirm(h.correlationId)).toThrow(/not connected/)
  })

  it('is silent on window unless asked; exposeTestHook() exposes the records and a span flush', async () => {
    setup()
    expect((globalThis as Record<string, unknown>).__clicktrace).toBeUndefined()
    const { transport, server, store } = setup('')
    const h = store.add('eggs')
    await flush()
    expect(hook().commands).toEqual([expect.objectContaining({ correlationId: h.correlationId, name: 'add', status: 'pending' })])
    transport.reject(h.correlationId, 'duplicate')
    expect(hook().commands[0]).toMatchObject({ status: 'rejected', error: { code: 'duplicate' } })
    expect(server.sent.filter((r) => r.url.endsWith('/v1/traces'))).toHaveLength(0) // batched for 2 s
    await hook().flush()
    const [exported] = server.sent.filter((r) => r.url.endsWith('/v1/traces'))
    expect(JSON.stringify(exported!.body)).toContain(h.correlationId)
  })

  it('takes another name for the hook', () => {
    setup('__myApp')
    expect(hook('__myApp').commands).toEqual([])
    delete (globalThis as Record<string, unknown>).__myApp
  })
})
