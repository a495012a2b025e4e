// The opt-in test hook: nothing on window unless asked; then the page's records and a span
// flush, under `__clicktrace` or the name given.
import { afterEach, describe, expect, it } from 'vitest'
import type { TestHook } from '../../src/testing/index.js'
import { flush } from '../harness.js'
import { setup } from './store.js'

const hook = (name = '__clicktrace'): TestHook => (globalThis as unknown as Record<string, TestHook>)[name]!

describe('exposeTestHook', () => {
  afterEach(() => {
    delete (globalThis as Record<string, unknown>).__clicktrace
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
