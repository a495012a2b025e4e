// Socket.IO: event `clicktrace` on namespace `/`. socket.io-client reconnects with capped,
// jittered backoff itself (1 s doubling to 5 s by default) and calls the `auth` function again
// at each attempt, so every reconnect resumes from the latest seq.
import type { Transport } from './types.js'

type IoFactory = (typeof import('socket.io-client'))['io']
type IoOptions = NonNullable<Parameters<IoFactory>[1]>

export interface SocketIoOptions {
  /** Server URL; default the page's origin. */
  url?: string
  /** Default `/socket.io`. */
  path?: string
  /** Inject `io` (tests, or to share a bundled copy); default a lazy `import('socket.io-client')`. */
  io?: IoFactory
  /** Passed through to socket.io-client (e.g. `reconnectionDelayMax`). */
  options?: Partial<IoOptions>
}

export function socketIoTransport(o: SocketIoOptions = {}): Transport {
  return {
    connect(h) {
      let close: (() => void) | undefined
      let closed = false
      h.state('connecting')
      ;(o.io ? Promise.resolve(o.io) : import('socket.io-client').then((m) => m.io)).then(
        (io) => {
          if (closed) return
          const opts: Partial<IoOptions> = { ...o.options, path: o.path ?? '/socket.io', auth: (cb) => cb(h.hello()) }
          // No URL means the page's origin; io('') would not (it reads as an empty host).
          const socket = o.url ? io(o.url, opts) : io(opts)
          socket.on('connect', () => h.state('connected'))
          socket.on('disconnect', () => h.state('disconnected'))
          // Refused by the server (invalid_token) it stays inactive: no automatic retry.
          socket.on('connect_error', () => h.state(socket.active ? 'disconnected' : 'rejected'))
          socket.on('clicktrace', h.message)
          close = () => {
            socket.off() // no events from a transport that was closed
            socket.close()
          }
        },
        () => h.state('disconnected'),
      )
      return () => {
        closed = true
        close?.()
      }
    },
  }
}
