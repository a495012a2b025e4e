// An in-memory transport for unit tests (vitest, jest): the test plays the server and pushes
// notifications into the store under test, with seqs and epochs numbered as a server would.
import { newCorrelationId } from '../ids.js'
import { REJECTED } from '../protocol.js'
import type { Connection, ConnectionStatus, Hello, Transport, TransportHandlers } from '../transport/types.js'

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

  /** Every frame the client sent after its hello (topic watches), in order. */
  readonly sent: object[] = []
  /** The last seq given on each topic. */
  readonly topicSeqs = new Map<string, number>()

  connect(h: TransportHandlers): Connection {
    this.handlers = h
    h.state('connecting')
    this.hellos.push(h.hello())
    h.state('connected')
    const close = (): void => {
      this.closed++
      if (this.handlers === h) this.handlers = undefined
    }
    return Object.assign(close, { send: (f: object) => this.handlers === h && this.sent.push(f) })
  }

  /** The topics the client watches now (from the watch and unwatch frames it sent). */
  watched(): string[] {
    const on = new Set<string>()
    for (const f of this.sent as Array<{ watch?: string; unwatch?: string }>) {
      if (f.watch !== undefined) on.add(f.watch)
      if (f.unwatch !== undefined) on.delete(f.unwatch)
    }
    return [...on]
  }

  /** A change on `topic` (`notifier.publish`), with the topic's next seq. */
  update(topic: string, data: unknown, o: { version?: number; key?: string; correlationId?: string } = {}): void {
    const seq = (this.topicSeqs.get(topic) ?? 0) + 1
    this.topicSeqs.set(topic, seq)
    this.raw({
      status: 'update',
      topic,
      seq,
      correlation_id: o.correlationId ?? newCorrelationId(),
      data,
      ...(this.epoch === undefined ? {} : { epoch: this.epoch }),
      ...(o.version === undefined ? {} : { version: o.version }),
      ...(o.key === undefined ? {} : { key: o.key }),
    })
  }

  /** Deliver a notification with the next seq (and the epoch, when set). */
  notify(n: Record<string, unknown>): void {
    this.raw({ seq: ++this.seq, ...(this.epoch === undefined ? {} : { epoch: this.epoch }), ...n })
  }

  /** The projection confirmed `correlationId`, with authoritative `data` when given (and the
   * `version` of `key` it is, for stores with live updates). */
  confirm(correlationId: string, data?: unknown, o: { version?: number; key?: string } = {}): void {
    this.notify({ correlation_id: correlationId, status: 'confirmed', ...(data === undefined ? {} : { data }), ...o })
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
