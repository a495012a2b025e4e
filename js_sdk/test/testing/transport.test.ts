// The in-memory transport plays the server's notifier for a store under test: confirmations
// with data, rejections, resyncs, as a user's vitest suite pushes them.
import { describe, expect, it } from 'vitest'
import { memoryTransport } from '../../src/testing/index.js'
import { flush } from '../harness.js'
import { setup } from './store.js'

describe('memoryTransport', () => {
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
})
