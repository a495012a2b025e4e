// Loud failures (issue 11 item 4): what a user must fix reaches onError and the console as a
// ClicktraceError, naming the cause and the fix, instead of commands silently waiting out their deadline.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createClient } from '../src/client.js'
import { ClicktraceError } from '../src/errors.js'
import { MemoryTransport, memoryFetch } from '../src/testing/index.js'
import type { Transport } from '../src/transport/types.js'
import { flush } from './harness.js'

describe('loud failures', () => {
  let console_: ReturnType<typeof vi.spyOn>
  beforeEach(() => {
    console_ = vi.spyOn(console, 'error').mockImplementation(() => {})
  })
  afterEach(() => {
    vi.restoreAllMocks()
    vi.doUnmock('socket.io-client')
    vi.resetModules()
  })

  it('a refused session: onError and one console line with the route to mount, every command rejected at once', async () => {
    const errors: unknown[] = []
    const net = memoryFetch(undefined, () => ({ status: 404, body: { detail: 'Not Found' } }))
    const client = createClient({ transport: new MemoryTransport(), fetch: net.fetch, tracesUrl: false, onError: (e) => errors.push(e) })
    const fx = { optimistic: () => {}, settle: () => {} }
    const outcomes = await Promise.all([client.command({ url: '/a' }, fx).settled, client.command({ url: '/b' }, fx).settled])
    expect(outcomes.map((o) => o.error?.code)).toEqual(['session_unavailable', 'session_unavailable'])
    expect(errors[0]).toBeInstanceOf(ClicktraceError)
    expect(errors[0]).toMatchObject({ code: 'session_unavailable' })
    expect(String((errors[0] as Error).message)).toMatch(/POST \/clicktrace\/session \(HTTP 404\).*mount the session route/)
    expect(console_).toHaveBeenCalledTimes(1) // said once, not per command
    expect(console_.mock.calls[0]![0]).toBe((errors[0] as Error).message)
  })

  it('a session route that cannot be reached says so', async () => {
    const errors: unknown[] = []
    const fetch = (async () => {
      throw new TypeError('Failed to fetch')
    }) as typeof globalThis.fetch
    const client = createClient({ transport: new MemoryTransport(), fetch, tracesUrl: false, onError: (e) => errors.push(e) })
    await client.command({ url: '/a' }, { optimistic: () => {}, settle: () => {} }).settled
    expect((errors[0] as Error).message).toMatch(/network: TypeError: Failed to fetch/)
  })

  it('a transport error goes to onError and the console, and waiting commands are sent anyway', async () => {
    const errors: unknown[] = []
    const net = memoryFetch()
    const transport: Transport = {
      connect(h) {
        h.state('connecting')
        queueMicrotask(() => {
          h.state('failed')
          h.error(new ClicktraceError('transport_unavailable', 'clicktrace: no socket here'))
        })
        return () => {}
      },
    }
    const client = createClient({ transport, fetch: net.fetch, tracesUrl: false, onError: (e) => errors.push(e) })
    client.command({ url: '/a' }, { optimistic: () => {}, settle: () => {} })
    await flush()
    expect(client.connection.status).toBe('failed')
    expect(errors).toEqual([new ClicktraceError('transport_unavailable', 'clicktrace: no socket here')])
    expect(console_).toHaveBeenCalledWith('clicktrace: no socket here')
    expect(net.commands()).toHaveLength(1)
  })

  it('without socket.io-client installed, the Socket.IO transport names the package and the alternatives', async () => {
    vi.doMock('socket.io-client', () => {
      throw new Error("Cannot find package 'socket.io-client'")
    })
    const { socketIoTransport } = await import('../src/transport/socketio.js')
    const errors: unknown[] = []
    const client = createClient({
      transport: socketIoTransport(),
      fetch: memoryFetch().fetch,
      tracesUrl: false,
      onError: (e) => errors.push(e),
    })
    client.command({ url: '/a' }, { optimistic: () => {}, settle: () => {} })
    for (let i = 0; i < 20 && errors.length === 0; i++) await new Promise((r) => setTimeout(r, 5))
    expect(errors[0]).toMatchObject({ code: 'transport_unavailable' })
    expect((errors[0] as Error).message).toMatch(/npm install socket\.io-client.*webSocketTransport\(\)/)
    expect(client.connection.status).toBe('failed')
    expect(console_).toHaveBeenCalledOnce()
  })

  it('refuses to start without a transport, saying which to pass', () => {
    expect(() => createClient({} as never)).toThrow(/socketIoTransport\(\) or webSocketTransport\(\)/)
  })
})
