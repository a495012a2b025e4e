import { io as realIo, type Socket } from 'socket.io-client'
import { describe, expect, it } from 'vitest'
import { UNREACHABLE_AFTER } from '../../src/protocol.js'
import { socketIoTransport } from '../../src/transport/socketio.js'
import type { ConnectionStatus } from '../../src/transport/types.js'
import { flush } from '../harness.js'

/** Records what the transport asked of socket.io-client and lets the test fire its events. */
function fakeIo() {
  const calls: Array<{ url: string | undefined; opts: Record<string, unknown> }> = []
  const handlers = new Map<string, (arg?: unknown) => void>()
  let closed = 0
  const emitted: unknown[][] = []
  const socket = {
    active: true,
    connected: false,
    emit: (...args: unknown[]) => emitted.push(args),
    on: (ev: string, fn: (arg?: unknown) => void) => handlers.set(ev, fn),
    off: () => handlers.clear(),
    close: () => closed++,
  }
  // Like socket.io-client: io(opts) or io(url, opts).
  const io = ((a: string | Record<string, unknown>, b?: Record<string, unknown>) => {
    calls.push(typeof a === 'string' ? { url: a, opts: b! } : { url: undefined, opts: a })
    return socket
  }) as unknown as typeof realIo
  return { io, calls, socket, emitted, fire: (ev: string, arg?: unknown) => handlers.get(ev)?.(arg), closed: () => closed }
}

describe('socketIoTransport', () => {
  it('sends a watch as the clicktrace event while connected, and drops it otherwise', async () => {
    const f = fakeIo()
    const conn = socketIoTransport({ io: f.io }).connect({
      hello: () => ({ token: 'tok', last_seq: 0 }),
      message: () => {},
      state: () => {},
      error: () => {},
    })
    conn.send?.({ watch: 'early' }) // before the library loaded: nothing to send on
    await flush()
    conn.send?.({ watch: 'seats' }) // not connected yet
    f.socket.connected = true
    conn.send?.({ watch: 'seats', seq: 3 })
    expect(f.emitted).toEqual([['clicktrace', { watch: 'seats', seq: 3 }]])
    conn()
  })

  it('connects on the page origin at /socket.io, authenticating with the current hello each attempt', async () => {
    const f = fakeIo()
    let seq = 0
    const messages: unknown[] = []
    const states: ConnectionStatus[] = []
    const close = socketIoTransport({ io: f.io }).connect({
      hello: () => ({ token: 'tok', last_seq: seq }),
      message: (m) => messages.push(m),
      state: (s) => states.push(s),
      error: () => {},
    })
    await flush()
    expect(f.calls).toHaveLength(1)
    expect(f.calls[0]!.url).toBeUndefined() // the page's origin
    expect(f.calls[0]!.opts.path).toBe('/socket.io')
    const auth = f.calls[0]!.opts.auth as (cb: (d: object) => void) => void
    let sent: object | undefined
    auth((d) => (sent = d))
    expect(sent).toEqual({ token: 'tok', last_seq: 0 })
    seq = 12
    auth((d) => (sent = d))
    expect(sent).toEqual({ token: 'tok', last_seq: 12 })
    f.fire('connect')
    f.fire('clicktrace', { seq: 13 })
    f.fire('disconnect')
    f.fire('connect_error', new Error('xhr poll error')) // socket.io-client retries by itself
    f.socket.active = false // the server refused the connection: no automatic retry
    f.fire('connect_error', new Error('invalid_token'))
    expect(messages).toEqual([{ seq: 13 }])
    expect(states).toEqual(['connecting', 'connected', 'disconnected', 'disconnected', 'rejected'])
    close()
    expect(f.closed()).toBe(1)
    const before = states.length
    f.fire('disconnect') // what socket.io-client emits on close(): nobody listens any more
    expect(states.length).toBe(before)
  })

  it('reports a server it never reached after UNREACHABLE_AFTER failed attempts, once', async () => {
    const start = async () => {
      const f = fakeIo()
      const errors: Error[] = []
      socketIoTransport({ io: f.io }).connect({
        hello: () => ({ token: '', last_seq: 0 }),
        message: () => {},
        state: () => {},
        error: (e) => errors.push(e),
      })
      await flush()
      return { f, errors }
    }
    const never = await start()
    for (let i = 0; i < UNREACHABLE_AFTER - 1; i++) never.f.fire('connect_error', new Error('xhr poll error'))
    expect(never.errors).toHaveLength(0)
    for (let i = 0; i < 3; i++) never.f.fire('connect_error', new Error('xhr poll error'))
    expect(never.errors).toHaveLength(1)
    expect(never.errors[0]).toMatchObject({ code: 'transport_unreachable' })
    expect(never.errors[0]!.message).toMatch(/cannot reach this origin at path \/socket\.io.*xhr poll error.*ws: true/)
    const once = await start() // connected once, then lost the server (a restart): not misconfigured
    once.f.fire('connect')
    for (let i = 0; i < 5; i++) once.f.fire('connect_error', new Error('xhr poll error'))
    expect(once.errors).toHaveLength(0)
  })

  it('passes url, path and extra options through, and never opens after an early close', async () => {
    const f = fakeIo()
    const h = { hello: () => ({ token: '', last_seq: 0 }), message: () => {}, state: () => {}, error: () => {} }
    socketIoTransport({ io: f.io, url: 'https://api.example', path: '/rt', options: { reconnectionDelayMax: 1234 } }).connect(h)
    await flush()
    expect(f.calls[0]).toMatchObject({ url: 'https://api.example', opts: { path: '/rt', reconnectionDelayMax: 1234 } })
    const g = fakeIo()
    socketIoTransport({ io: g.io }).connect(h)()
    await flush()
    expect(g.calls).toHaveLength(0)
  })

  it('with the real socket.io-client and no URL, targets the page origin', async () => {
    let socket: Socket | undefined
    const io = ((...args: Parameters<typeof realIo>) => (socket = realIo(...args))) as typeof realIo
    const close = socketIoTransport({ io, options: { autoConnect: false } }).connect({
      hello: () => ({ token: '', last_seq: 0 }),
      message: () => {},
      state: () => {},
      error: () => {},
    })
    await flush()
    expect((socket!.io as unknown as { uri: string }).uri).toBe(location.origin)
    expect(socket!.io.opts.path).toBe('/socket.io')
    close()
  })
})
