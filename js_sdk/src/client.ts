// The framework-free core: session, transport, seq/resume, commands, deadlines, spans.
// The Pinia glue supplies state effects and a `reactive` wrapper; nothing here imports Vue.
import { formatTraceparent, newCorrelationId } from './ids.js'
import { parseError, parseNotification, type Notification } from './notification.js'
import { mayPropagate, resolveUrl } from './origin.js'
import { SessionSource } from './session.js'
import { makeTracing } from './trace/index.js'
import { Kind, type ActionSpan, type Tracing } from './trace/types.js'
import { socketIoTransport } from './transport/socketio.js'
import type { Transport } from './transport/types.js'
import { webSocketTransport } from './transport/websocket.js'
import type {
  ClicktraceOptions, CommandError, CommandHandle, CommandOutcome, CommandRecord, CommandRequest, ConnectionStatus,
} from './types.js'

export const DEFAULT_DEADLINE_MS = 15_000
/** Settled commands remembered for late confirmations (after a timeout). */
export const MAX_RETIRED = 200

export type Outcome = CommandOutcome['status']

export interface CommandEffects<D> {
  /** Apply the optimistic change (called once, synchronously, at the click). */
  optimistic(correlationId: string): void
  /** The command settled; `late` is a confirmation after a timeout. */
  settle(status: Outcome, data: D | undefined, late: boolean): void
}

interface Entry {
  record: CommandRecord<unknown>
  span: ActionSpan
  effects: CommandEffects<unknown>
  resolve: (o: CommandOutcome<unknown>) => void
  timer: ReturnType<typeof setTimeout> | undefined
  done: boolean
}

const identity = <T>(t: T): T => t

export class ClicktraceClient {
  readonly connection: { status: ConnectionStatus }
  private readonly sessions: SessionSource
  private readonly transport: Transport
  private readonly tracing: Tracing
  private readonly entries = new Map<string, Entry>()
  private readonly retired: string[] = []
  private readonly resyncHooks = new Set<() => unknown>()
  private readonly fetch: typeof fetch
  private lastSeq = 0
  private clientId: string | undefined
  private disconnect: (() => void) | undefined
  private ready: Promise<void> | undefined

  constructor(
    private readonly options: ClicktraceOptions = {},
    private readonly reactive: <T extends object>(t: T) => T = identity,
  ) {
    this.fetch = options.fetch ?? ((...a) => globalThis.fetch(...a))
    this.sessions = new SessionSource(options.sessionUrl ?? '/clicktrace/session', this.fetch)
    const t = options.transport ?? 'socket.io'
    this.transport = t === 'socket.io' ? socketIoTransport() : t === 'websocket' ? webSocketTransport() : t
    this.tracing = makeTracing(options, this.fetch, () => this.sessions.known?.token)
    this.connection = reactive({ status: 'idle' as ConnectionStatus })
  }

  /** Register a hook run when the server asks for a resync; returns its removal. */
  onResync(hook: () => unknown): () => void {
    this.resyncHooks.add(hook)
    return () => this.resyncHooks.delete(hook)
  }

  command<D>(req: CommandRequest, effects: CommandEffects<D>): CommandHandle<D> {
    const correlationId = newCorrelationId()
    const method = (req.method ?? 'POST').toUpperCase()
    const name = req.name ?? `${method} ${resolveUrl(req.url)?.pathname ?? req.url}`
    const span = this.tracing.start(name, { 'clicktrace.correlation_id': correlationId, 'clicktrace.entity': req.entity === undefined ? undefined : String(req.entity) })
    const record = this.reactive<CommandRecord<unknown>>({
      correlationId, traceparent: formatTraceparent(span.context), name,
      entity: req.entity === undefined ? undefined : String(req.entity),
      status: 'pending', error: undefined, data: undefined, startedAt: Date.now(), settledAt: undefined,
    })
    let resolve!: (o: CommandOutcome<unknown>) => void
    const settled = new Promise<CommandOutcome<unknown>>((r) => (resolve = r))
    const entry: Entry = { record, span, effects: effects as CommandEffects<unknown>, resolve, timer: undefined, done: false }
    this.entries.set(correlationId, entry)
    effects.optimistic(correlationId)
    this.emit(record)
    const deadlineMs = req.deadlineMs ?? this.options.deadlineMs ?? DEFAULT_DEADLINE_MS
    entry.timer = setTimeout(() => this.settle(entry, 'timed_out', { code: 'timed_out', message: `no outcome within ${deadlineMs} ms` }), deadlineMs)
    void this.send(entry, req, method, Date.now() + deadlineMs)
    return {
      correlationId,
      traceparent: record.traceparent,
      record: record as CommandRecord<D>,
      get status() {
        return record.status
      },
      settled: settled as Promise<CommandOutcome<D>>,
    }
  }

  /** Stop the transport and flush nothing further. */
  close(): void {
    this.disconnect?.()
    this.disconnect = undefined
    this.ready = undefined
  }

  private async send(entry: Entry, req: CommandRequest, method: string, deadline: number): Promise<void> {
    const { record } = entry
    let session
    try {
      session = await this.sessions.get()
      this.connect(session.clientId)
      await this.ready
    } catch (e) {
      this.options.onError?.(e)
      return this.settle(entry, 'rejected', { code: 'session_unavailable', message: String(e) })
    }
    if (entry.done) return
    const http = entry.span.child(`HTTP ${method}`, Kind.Client, { 'http.request.method': method, 'url.full': resolveUrl(req.url)?.href ?? req.url })
    const headers: Record<string, string> = { 'content-type': 'application/json' }
    const allowed = mayPropagate(req.url, this.options.propagateTo ?? [])
    if (allowed) {
      headers.traceparent = record.traceparent
      headers['x-correlation-id'] = record.correlationId
      headers['x-clicktrace-client'] = session.token
      headers['x-clicktrace-deadline'] = String(deadline)
      if (req.causationId) headers['x-causation-id'] = req.causationId
    }
    const metadata = {
      correlation_id: record.correlationId, deadline,
      ...(allowed ? { client_id: session.clientId } : {}),
      ...(req.causationId ? { causation_id: req.causationId } : {}),
    }
    let res: Response
    try {
      res = await this.fetch(req.url, { method, headers, body: JSON.stringify({ ...req.body, metadata }), credentials: 'same-origin' })
    } catch (e) {
      http.end('network_error')
      return this.settle(entry, 'rejected', { code: 'network_error', message: String(e) })
    }
    http.set({ 'http.response.status_code': res.status })
    if (res.ok) return http.end()
    let body: unknown
    try {
      body = await res.json()
    } catch {
      body = undefined
    }
    const error = parseError((body as { error?: unknown } | undefined)?.error, `http_${res.status}`)
    http.end(error.code)
    this.settle(entry, 'rejected', error)
  }

  private connect(clientId: string): void {
    if (this.clientId !== clientId) {
      // A new session names a new client: its seq starts over.
      this.close()
      this.clientId = clientId
      this.lastSeq = 0
    }
    if (this.disconnect) return
    let first: (() => void) | undefined
    this.ready = new Promise((r) => (first = r))
    this.disconnect = this.transport.connect({
      hello: () => ({ token: this.sessions.known?.token ?? '', last_seq: this.lastSeq }),
      message: (raw) => this.receive(raw),
      state: (s) => {
        this.connection.status = s
        // The first command waits for the first attempt, so the server can route its outcome.
        if (s !== 'connecting') first?.()
      },
    })
  }

  private receive(raw: unknown): void {
    const n = parseNotification(raw)
    if (!n) return
    if (n.status === 'resync') {
      this.lastSeq = n.seq
      for (const hook of this.resyncHooks) {
        Promise.resolve().then(hook).catch((e: unknown) => this.options.onError?.(e))
      }
      return
    }
    if (n.seq !== 0 && n.seq <= this.lastSeq) return // replayed twice across a reconnect
    this.lastSeq = Math.max(this.lastSeq, n.seq)
    const entry = this.entries.get(n.correlationId!)
    if (!entry || n.status === 'progress') return
    entry.span.child('clicktrace notification', Kind.Consumer, { 'clicktrace.seq': n.seq, 'clicktrace.status': n.status, 'clicktrace.type': n.type }, n.trace).end()
    if (n.status === 'confirmed') this.settle(entry, 'confirmed', undefined, n.data)
    else this.settle(entry, 'rejected', n.error)
  }

  private settle(entry: Entry, status: Outcome, error?: CommandError, data?: unknown): void {
    const { record } = entry
    if (entry.done) {
      // A confirmation after the deadline: the server did it, so show its authoritative state.
      if (status === 'confirmed' && record.status === 'timed_out') {
        Object.assign(record, { status, error: undefined, data, settledAt: Date.now() })
        this.run(() => entry.effects.settle(status, data, true))
        this.emit(record)
      }
      return
    }
    entry.done = true
    clearTimeout(entry.timer)
    Object.assign(record, { status, error, data, settledAt: Date.now() })
    this.run(() => entry.effects.settle(status, data, false))
    entry.span.set({ 'clicktrace.status': status })
    entry.span.end(status === 'confirmed' ? undefined : (error?.code ?? status))
    entry.resolve({ status, correlationId: record.correlationId, error, data })
    this.emit(record)
    this.retired.push(record.correlationId)
    while (this.retired.length > MAX_RETIRED) this.entries.delete(this.retired.shift()!)
  }

  private run(fn: () => void): void {
    try {
      fn()
    } catch (e) {
      this.options.onError?.(e)
    }
  }

  private emit(record: CommandRecord<unknown>): void {
    this.run(() => this.options.onStatus?.(record))
  }
}
