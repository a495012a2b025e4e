// Plain WebSocket on /clicktrace/ws: first frame {"token", "last_seq", "epoch"}, then one JSON
// notification per text frame (and the tab's topic watches, one per text frame, the other way). Reconnects with capped exponential backoff and full jitter.
// Imported only by apps that use it (`webSocketTransport()`), so a Socket.IO app does not carry it.
import { ClicktraceError } from '../errors.js'
import { resolveUrl } from '../http.js'
import { INVALID_TOKEN, POLICY_VIOLATION, TRANSPORT_UNREACHABLE, UNREACHABLE_AFTER, WEBSOCKET_URL } from '../protocol.js'
import type { Transport } from './types.js'

export interface WebSocketOptions {
  url?: string
  /** Inject the constructor (tests); default `globalThis.WebSocket`. */
  WebSocket?: typeof WebSocket
  initialDelayMs?: number
  maxDelayMs?: number
}

export const WS_INITIAL_DELAY_MS = 500
export const WS_MAX_DELAY_MS = 10_000

/** Delay before reconnect attempt `attempt` (0-based): full jitter under a capped exponential. */
export const backoffDelay = (attempt: number, initial: number, max: number): number =>
  Math.floor(Math.random() * Math.min(max, initial * 2 ** attempt)) // 2 ** 1024 is Infinity: still capped

// Relative to the page: http(s) becomes ws(s).
const wsUrl = (url: string): string => resolveUrl(url)?.href.replace(/^http/, 'ws') ?? url

export function webSocketTransport(options: WebSocketOptions = {}): Transport {
  const initial = options.initialDelayMs ?? WS_INITIAL_DELAY_MS
  const max = options.maxDelayMs ?? WS_MAX_DELAY_MS
  return {
    connect(h) {
      const WS = options.WebSocket ?? globalThis.WebSocket
      let closed = false
      let attempt = 0
      let opened = false // since the last report: failures in a row before any open
      let socket: WebSocket | undefined
      let timer: ReturnType<typeof setTimeout> | undefined
      const open = (): void => {
        h.state('connecting')
        const url = wsUrl(options.url ?? WEBSOCKET_URL)
        const ws = new WS(url)
        socket = ws
        ws.onopen = () => {
          attempt = 0
          opened = true
          ws.send(JSON.stringify(h.hello()))
          h.state('connected')
        }
        ws.onmessage = (ev: MessageEvent) => {
          let data: unknown
          try {
            data = JSON.parse(ev.data as string) // a binary frame reads as "[object Blob]": not JSON
          } catch {
            return // not JSON: ignore the frame, never throw on untrusted input
          }
          h.message(data)
        }
        ws.onerror = () => {} // a close follows; handled there (Node's `ws` throws unhandled errors)
        ws.onclose = (ev: CloseEvent) => {
          if (socket !== ws) return
          socket = undefined
          h.state(ev.code === POLICY_VIOLATION && ev.reason === INVALID_TOKEN ? 'rejected' : 'disconnected')
          if (!opened && attempt + 1 === UNREACHABLE_AFTER) {
            h.error(
              new ClicktraceError(
                TRANSPORT_UNREACHABLE,
                `clicktrace: WebSocket ${url} did not open (${UNREACHABLE_AFTER} tries, close ${ev.code}): mount the notifier (proxy with ws: true) or set webSocketTransport({url})`,
              ),
            )
          }
          if (!closed) timer = setTimeout(open, backoffDelay(attempt++, initial, max))
        }
      }
      open()
      const close = (): void => {
        closed = true
        clearTimeout(timer)
        const ws = socket
        socket = undefined // its close event must not report on a transport that was closed
        ws?.close()
      }
      return Object.assign(close, { send: (f: object) => socket?.readyState === 1 && socket.send(JSON.stringify(f)) })
    },
  }
}
