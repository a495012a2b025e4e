// An in-memory transport for unit tests (vitest, jest): the test plays the server and pushes
// notifications into the store under test, with seqs and epochs numbered as a server would.
import { REJECTED } from '../protocol.js'
import type { ConnectionStatus, Hello, Transport, TransportHandlers } from '../transport/types.js'

export class MemoryTransport implements Transport {
  /** The client's handlers while connected. */
  handlers: TransportHandlers | undefined
  /** Every hello the client sent (one per connect). */
  readonly hellos: Hello[] = []
  /** How many times the client closed it. */
  closed = 0
  /** The seq of the last notification pushed. */
  seq = 0
  /** Stamped on every frame when set (replay epochs). */
  epoch: string | undefined

  connect(h: TransportHandlers): () => void {
    this.handlers = h
    h.state('connecting')
    this.hellos.push(h.hello())
    h.state('connected')
    return () => {
      this.closed++
      if (this.handlers === h) this.handlers = undefined
    }
  }

  /** Deliver a notification with the next seq (and the epoch, when set). */
  notify(n: Record<string, unknown>): void {
    this.raw({ seq: ++this.seq, ...(this.epoch === undefined ? {} : { epoch: this.epoch }), ...n })
  }

  /** The projection confirmed `correlationId`, with authoritative `data` when given. */
  confirm(correlationId: string, data?: unknown): void {
    this.notify({ correlation_id: correlationId, status: 'confirmed', ...(data === undefined ? {} : { data }) })
  }

  /** The projection rejected `correlationId`. */
  reject(correlationId: string, code = REJECTED, message = code): void {
    this.notify({ correlation_id: correlationId, status: 'rejected', error: { code, message } })
  }

  /** The server can no longer replay: it names its current seq (stores run their resync hook). */
  resync(): void {
    this.raw({ status: 'resync', seq: this.seq, ...(this.epoch === undefined ? {} : { epoch: this.epoch }) })
  }

  /** Report a connection state (e.g. `rejected`: the server refused the token). */
  state(s: Exclude<ConnectionStatus, 'idle'>): void {
    this.connected().state(s)
  }

  /** Any frame, as a hostile or older server might send it. */
  raw(data: unknown): void {
    this.connected().message(data)
  }

  private connected(): TransportHandlers {
    if (!this.handlers) throw new Error('MemoryTransport: not connected (the client connects at its first command)')
    return this.handlers
  }
}

export const memoryTransport = (): MemoryTransport => new MemoryTransport()
