// Socket.IO: event `clicktrace` on namespace `/`. socket.io-client reconnects with capped,
// jittered backoff itself and calls the `auth` function again at each attempt.
import type { Transport } from './types.js'

type IoFactory = (typeof import('socket.io-client'))['io']

export interface SocketIoOptions {
  /** Server URL; default the page's origin. */
  url?: string
  path?: string
  /** Inject `io` (tests, or to share a bundled copy); default a lazy `import('socket.io-client')`. */
  io?: IoFactory
  reconnectionDelayMs?: number
  reconnectionDelayMaxMs?: number
}

export function socketIoTransport(options: SocketIoOptions = {}): Transport {
  return {
    connect(h) {
      let closed = false
      let close = (): void => {
        closed = true
      }
      const load: Promise<IoFactory> = options.io
        ? Promise.resolve(options.io)
        : import('socket.io-client').then((m) => m.io)
      h.state('connecting')
      load.then(
        (io) => {
          if (closed) return
          const opts = {
            path: options.path ?? '/socket.io',
            auth: (cb: (data: object) => void) => cb(h.hello()),
            reconnectionDelay: options.reconnectionDelayMs ?? 500,
            reconnectionDelayMax: options.reconnectionDelayMaxMs ?? 10_000,
          }
          const socket = options.url === undefined ? io(opts) : io(options.url, opts)
          socket.on('connect', () => h.state('connected'))
          socket.on('disconnect', () => h.state('disconnected'))
          socket.on('connect_error', () => h.state('disconnected'))
          socket.on('clicktrace', (data: unknown) => h.message(data))
          close = () => {
            socket.close()
          }
        },
        () => h.state('disconnected'),
      )
      return () => close()
    },
  }
}
