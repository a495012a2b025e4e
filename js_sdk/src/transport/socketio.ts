// Socket.IO: event `clicktrace` on namespace `/` (both ways: the tab emits its topic watches). socket.io-client reconnects with capped,
// jittered backoff itself (1 s doubling to 5 s by default) and calls the `auth` function again
// at each attempt, so every reconnect resumes from the latest seq.
// Imported only by apps that use it (`socketIoTransport()`), so a WebSocket app does not carry it.
import { ClicktraceError } from '../errors.js'
import { SOCKET_IO_EVENT, SOCKET_IO_PATH, TRANSPORT_UNAVAILABLE, TRANSPORT_UNREACHABLE, UNREACHABLE_AFTER } from '../protocol.js'
import type { Transport } from './types.js'

// socket.io-client's types, described here by what is used of them: the emitted .d.ts must not
// import the package, so a WebSocket-only app type-checks without it (skipLibCheck off).
// Its real `io` is assignable to `IoFactory`.
/** Options passed through to socket.io-client's `io()` (`ManagerOptions & SocketOptions`). */
export type IoOptions = { [option: string]: unknown }
interface IoSocket {
  readonly active: boolean
  readonly connected: boolean
  on(event: string, listener: (error: Error) => void): unknown
  emit(event: string, frame: object): unknown
  off(): unknown
  close(): unknown
}
/** socket.io-client's `io`: `io(opts)` or `io(url, opts)`. */
export interface IoFactory {
  (opts?: IoOptions): IoSocket
  (url: string, opts?: IoOptions): IoSocket
}

export interface SocketIoOptions {
  /** Server URL; default the page's origin. */
  url?: string
  /** Default `/socket.io`. */
  path?: string
  /** Inject `io` (tests, or to share a bundled copy); default a lazy `import('socket.io-client')`. */
  io?: IoFactory
  /** Passed through to socket.io-client (e.g. `reconnectionDelayMax`). */
  options?: IoOptions
}

export function socketIoTransport(o: SocketIoOptions = {}): Transport {
  return {
    connect(h) {
      let close: (() => void) | undefined
      let emit: ((f: object) => unknown) | undefined
      let closed = false
      h.state('connecting')
      ;(o.io ? Promise.resolve(o.io) : import('socket.io-client').then((m) => m.io as IoFactory)).then(
        (factory) => {
          if (closed) return
          const io = factory as (a: unknown, b?: unknown) => IoSocket
          const opts = { ...o.options, path: o.path ?? SOCKET_IO_PATH, auth: (cb: (hello: object) => void) => cb(h.hello()) }
          // No URL means the page's origin; io('') would not (it reads as an empty host).
          const socket = o.url ? io(o.url, opts) : io(opts)
          let failures = 0 // before the first connect; a server lost later is not misconfigured
          socket.on('connect', () => {
            failures = -Infinity
            h.state('connected')
          })
          socket.on('disconnect', () => h.state('disconnected'))
          // Refused by the server (invalid_token) it stays inactive: no automatic retry.
          socket.on('connect_error', (e) => {
            if (!socket.active) return h.state('rejected')
            h.state('disconnected')
            if (++failures === UNREACHABLE_AFTER) {
              h.error(
                new ClicktraceError(
                  TRANSPORT_UNREACHABLE,
                  `clicktrace: Socket.IO cannot reach ${o.url ?? 'this origin'} at path ${opts.path} (${failures} tries: ${e.message}): mount the notifier (proxy with ws: true) or set socketIoTransport({url, path})`,
                  e,
                ),
              )
            }
          })
          socket.on(SOCKET_IO_EVENT, h.message)
          emit = (f) => socket.connected && socket.emit(SOCKET_IO_EVENT, f)
          close = () => {
            socket.off() // no events from a transport that was closed
            socket.close()
          }
        },
        (e: unknown) => {
          h.state('failed')
          h.error(
            new ClicktraceError(
              TRANSPORT_UNAVAILABLE,
              'clicktrace: socket.io-client could not be loaded, so no outcome can arrive: npm install socket.io-client, or use webSocketTransport()',
              e,
            ),
          )
        },
      )
      return Object.assign(
        () => {
          closed = true
          close?.()
        },
        { send: (f: object) => emit?.(f) },
      )
    },
  }
}
