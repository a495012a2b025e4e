// The framework-free core: session, transport, seq/resume, commands, deadlines, spans.
// The Pinia glue supplies state effects and a `reactive` wrapper; nothing here imports Vue.
// Closures rather than classes: a minifier can shorten locals but not property names.
import { formatTraceparent, newCorrelationId } from './ids.js'
import { postCommand } from './http.js'
import { parseNotification } from './notification.js'
import { sessionSource } from './session.js'
import { makeTracing } from './trace/index.js'
import type { ActionSpan } from './trace/types.js'
import { socketIoTransport } from './transport/socketio.js'
import { webSocketTransport } from './transport/websocket.js'
import type {
  ClicktraceOptions, CommandError, CommandHandle, CommandOutcome, CommandRecord, CommandRequest, ConnectionStatus,
} from './types.js'

export const DEFAULT_DEADLINE_MS = 15_000
/** Minimum time between two session renewals after the server refused the token. */
export const REJOIN_MS = 5_000
/** Settled commands remembered for late confirmations (after a timeout). */
export const MAX_RETIRED = 200

export type Outcome = CommandOutcome['status']

export interface CommandEffects<D> {
  /** Apply the optimistic change (called once, synchronously, at the click). */
  optimistic(correlationId: string): void
  /** The command settled; `late` is a confirmation after a timeout or a lost response. */
  settle(status: Outcome, data: D | undefined, late: boolean): void
}

export interface ClicktraceClient {
  readonly connection: { status: ConnectionStatus }
  /** Register a hook run when the server asks for a resync; returns its removal. */
  onResync(hook: () => unknown): () => void
  command<D>(req: CommandRequest, effects: CommandEffects<D>): CommandHandle<D>
  /** Close the transport (a later command reconnects). */
  close(): void
}

interface Entry {
  record: CommandRecord<unknown>
  span: ActionSpan
  effects: CommandEffects<unknown>
  resolve: (o: CommandOutcome<unknown>) => void
  timer: ReturnType<typeof setTimeout> | undefined
  done: boolean
}

export function createClient(
  options: ClicktraceOptions = {},
  reactive: <T extends object>(t: T) => T = (t) => t,
): ClicktraceClient {
  const fetcher: typeof fetch = options.fetch ?? ((...a) => globalThis.fetch(...a))
  const sessions = sessionSource(options.sessionUrl ?? '/clicktrace/session', fetcher)
  const t = options.transport ?? 'socket.io'
  const transport = t === 'socket.io' ? socketIoTransport() : t === 'websocket' ? webSocketTransport() : t
  const tracing = makeTracing(options, fetcher, () => sessions.known()?.token)
  const connection = reactive({ status: 'idle' as ConnectionStatus })
  const entries = new Map<string, Entry>()
  const retired: string[] = []
  const resyncHooks = new Set<() => unknown>()
  const onError = (e: unknown): void => options.onError?.(e)
  let lastSeq = 0
  let clientId: string | undefined
  let disconnect: (() => void) | undefined
  let ready: Promise<void> | undefined

  const run = (fn: () => void): void => {
    try {
      fn()
    } catch (e) {
      onError(e)
    }
  }
  const emit = (record: CommandRecord<unknown>): void => run(() => options.onStatus?.(record))

  // Resolves `ready`: commands waiting for the first connection attempt go ahead.
  let go: (() => void) | undefined

  function close(): void {
    disconnect?.()
    go?.() // nobody waits on a transport that is gone
    disconnect = ready = undefined
  }

  // The server refused the connection: renew the session and reconnect (at most every
  // REJOIN_MS, so a server refusing every token does not make a hot loop). A token it still
  // accepts keeps the client id, and so the seq to resume from; otherwise seq starts over.
  let rejoinAt = 0
  function rejoin(): void {
    const wait = Math.max(0, rejoinAt - Date.now())
    rejoinAt = Date.now() + wait + REJOIN_MS
    setTimeout(() => {
      sessions.get(true).then((s) => {
        close()
        connect(s.clientId)
      }, onError)
    }, wait)
  }

  function connect(id: string): void {
    if (clientId !== id) {
      // A new session names a new client: its seq starts over.
      close()
      clientId = id
      lastSeq = 0
    }
    if (disconnect) return
    ready = new Promise((r) => (go = r))
    disconnect = transport.connect({
      hello: () => ({ token: sessions.known()?.token ?? '', last_seq: lastSeq }),
      message: receive,
      state: (s) => {
        connection.status = s
        // The first command waits for the first attempt, so the server can route its outcome.
        if (s !== 'connecting') go?.()
        if (s === 'rejected') rejoin()
      },
    })
  }

  function receive(raw: unknown): void {
    const n = parseNotification(raw)
    if (!n) return
    if (n.status === 'resync') {
      lastSeq = n.seq
      for (const hook of resyncHooks) Promise.resolve().then(hook).catch(onError)
      return
    }
    if (n.seq <= lastSeq) return // replayed twice across a reconnect
    lastSeq = n.seq
    const entry = entries.get(n.correlationId!)
    if (!entry || n.status === 'progress') return
    entry.span
      .child('clicktrace notification', 5 /* CONSUMER */, { 'clicktrace.seq': n.seq, 'clicktrace.status': n.status, 'clicktrace.type': n.type }, n.trace)
      .end()
    settle(entry, n.status, n.error, n.data)
  }

  function settle(entry: Entry, status: Outcome, error?: CommandError, data?: unknown): void {
    const { record } = entry
    const late = entry.done
    // Once settled, only a confirmation after the deadline (or after the response was lost)
    // counts: the server did it, so show its authoritative state.
    if (late && (status !== 'confirmed' || (record.status !== 'timed_out' && record.error?.code !== 'network_error'))) return
    entry.done = true
    clearTimeout(entry.timer)
    Object.assign(record, { status, error, data, settledAt: Date.now() })
    run(() => entry.effects.settle(status, data, late))
    emit(record)
    if (late) return
    entry.span.end(status === 'confirmed' ? undefined : (error?.code ?? status))
    entry.resolve({ status, correlationId: record.correlationId, error, data })
    retired.push(record.correlationId)
    while (retired.length > MAX_RETIRED) entries.delete(retired.shift()!)
  }

  async function send(entry: Entry, req: CommandRequest, method: string, deadline: number): Promise<void> {
    let session
    try {
      session = await sessions.get()
      connect(session.clientId)
      await ready
    } catch (e) {
      onError(e)
      return settle(entry, 'rejected', { code: 'session_unavailable', message: String(e) })
    }
    if (entry.done) return
    const error = await postCommand(fetcher, req, method, entry.record, session, deadline, options.propagateTo ?? [], entry.span)
    if (error) settle(entry, 'rejected', error)
  }

  return {
    connection,
    close,
    onResync(hook) {
      resyncHooks.add(hook)
      return () => resyncHooks.delete(hook)
    },
    command<D>(req: CommandRequest, effects: CommandEffects<D>): CommandHandle<D> {
      const correlationId = newCorrelationId()
      const method = (req.method ?? 'POST').toUpperCase()
      const name = req.name ?? `${method} ${req.url}`
      const entity = req.entity === undefined ? undefined : String(req.entity)
      const span = tracing.start(name, { 'clicktrace.correlation_id': correlationId, 'clicktrace.entity': entity })
      // error, data, settledAt are added at settlement (Vue tracks added keys).
      const record = reactive({
        correlationId, traceparent: formatTraceparent(span.context), name, entity, status: 'pending', startedAt: Date.now(),
      } as CommandRecord<unknown>)
      let resolve!: (o: CommandOutcome<unknown>) => void
      const settled = new Promise<CommandOutcome<unknown>>((r) => (resolve = r))
      const entry: Entry = { record, span, effects: effects as CommandEffects<unknown>, resolve, timer: undefined, done: false }
      effects.optimistic(correlationId) // a throwing optimistic change throws here, before anything is sent
      entries.set(correlationId, entry)
      emit(record)
      const deadlineMs = req.deadlineMs ?? options.deadlineMs ?? DEFAULT_DEADLINE_MS
      entry.timer = setTimeout(
        () => settle(entry, 'timed_out', { code: 'timed_out', message: `no outcome within ${deadlineMs} ms` }),
        deadlineMs,
      )
      void send(entry, req, method, Date.now() + deadlineMs)
      return {
        correlationId,
        traceparent: record.traceparent,
        record: record as CommandRecord<D>,
        get status() {
          return record.status
        },
        settled: settled as Promise<CommandOutcome<D>>,
      }
    },
  }
}
