// The framework-free core: session, transport, resume, commands, deadlines, spans.
// The Pinia glue supplies state effects and a `reactive` wrapper; nothing here imports Vue.
// Closures rather than classes: a minifier can shorten locals but not property names.
import { ClicktraceError } from './errors.js'
import { sendCommand } from './http.js'
import { formatTraceparent, newCorrelationId } from './ids.js'
import { type Notification, parseError, parseNotification, type Resume, resume } from './notification.js'
import { NETWORK_ERROR, SESSION_UNAVAILABLE, SESSION_URL, TIMED_OUT } from './protocol.js'
import { type Session, sessionSource } from './session.js'
import { makeTracing } from './trace/recorder.js'
import type { ActionSpan } from './trace/types.js'
import type { Connection, ConnectionStatus } from './transport/types.js'
import type {
  ClicktraceClient,
  ClicktraceOptions,
  CommandEffects,
  CommandError,
  CommandHandle,
  CommandOutcome,
  CommandRecord,
  CommandRequest,
} from './types.js'

export const DEFAULT_DEADLINE_MS = 15_000
/** Minimum time between two session renewals after the server refused the token. */
export const REJOIN_MS = 5_000
/** Settled commands remembered for late confirmations (after a timeout). */
export const MAX_RETIRED = 200

interface Entry {
  record: CommandRecord<unknown>
  span: ActionSpan
  effects: CommandEffects<unknown>
  resolve: (o: CommandOutcome<unknown>) => void
  timer?: ReturnType<typeof setTimeout>
  done: boolean
}

// The codes a later confirmation supersedes (the dead letters' are projection.py's).
const SUPERSEDED = [TIMED_OUT, NETWORK_ERROR, 'processing_failed', 'deadline_exceeded']

export function createClient(options: ClicktraceOptions, reactive: <T extends object>(t: T) => T = (t) => t): ClicktraceClient {
  const { transport } = options
  if (!transport?.connect) throw new TypeError('clicktrace: pass transport: socketIoTransport() or webSocketTransport()')
  const fetcher: typeof fetch = options.fetch ?? ((...a) => globalThis.fetch(...a))
  const sessions = sessionSource(options.sessionUrl ?? SESSION_URL, fetcher)
  const tracing = makeTracing(options, fetcher, () => sessions.known()?.token)
  const connection = reactive({ status: 'idle' as ConnectionStatus })
  const entries = new Map<string, Entry>()
  const retired: string[] = []
  const resyncHooks = new Set<() => unknown>()
  const position = resume()
  // Watched topics: each its own numbering (seq, epoch), as the server keeps one per topic.
  const topics = new Map<string, { at: Resume; listeners: Set<(n: Notification) => void> }>()
  const onError = (e: unknown): void => options.onError?.(e)
  const said = new Set<string>()
  // A failure the user must fix: onError, and the console once per message (not per command).
  const loud = (e: Error): void => {
    onError(e)
    if (said.has(e.message)) return
    said.add(e.message)
    console.error(e.message)
  }
  const records = options.testHook?.(() => tracing.flush())
  let clientId: string | undefined
  let disconnect: Connection | undefined
  let ready: Promise<void> | undefined
  // Resolves `ready`: commands waiting for the first connection attempt go ahead.
  let go: (() => void) | undefined
  let waiting = false

  const run = (fn: () => void): void => {
    try {
      fn()
    } catch (e) {
      onError(e)
    }
  }
  const emit = (record: CommandRecord<unknown>): void => run(() => options.onStatus?.(record))

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
      }, loud)
    }, wait)
  }

  function connect(id: string): void {
    if (clientId !== id) {
      close() // a new session names a new client: its seq starts over
      clientId = id
      position.reset()
    }
    if (disconnect) return
    waiting = true
    ready = new Promise((r) => {
      go = () => {
        waiting = false
        r()
      }
    })
    disconnect = transport.connect({
      hello: () => position.hello(sessions.known()?.token ?? ''),
      message: receive,
      state: (s) => {
        connection.status = s
        if (s === 'connected') watchAll()
        // The first command waits for the first attempt, so the server can route its outcome.
        if (s !== 'connecting') go?.()
        if (s === 'rejected') rejoin()
      },
      error: (e) => {
        loud(e)
        go?.()
      },
    })
    if (connection.status === 'connected') watchAll() // a transport that connected at once
  }

  const resyncAll = (): void => {
    for (const hook of resyncHooks) Promise.resolve().then(hook).catch(onError)
  }

  const watchAll = (): void => {
    for (const t of topics.keys()) sendWatch(t)
  }

  // Where the topic resumes from: its last seq and epoch, as the hello does for outcomes.
  function sendWatch(topic: string): void {
    const { last_seq, epoch } = topics.get(topic)!.at.hello('')
    disconnect?.send?.({ watch: topic, seq: last_seq, epoch })
  }

  function receive(raw: unknown): void {
    const topic = (raw as { topic?: unknown } | null)?.topic
    const n = typeof topic === 'string' ? receiveTopic(topic, raw as Record<string, unknown>) : parseNotification(raw)
    if (!n) return
    const { resync, deliver } = position.take(n)
    if (resync) resyncAll()
    const entry = deliver ? entries.get(n.correlationId!) : undefined
    if (!entry || (n.status !== 'confirmed' && n.status !== 'rejected')) return
    entry.span
      .child(
        'clicktrace notification',
        5 /* CONSUMER */,
        {
          'clicktrace.correlation_id': n.correlationId,
          'clicktrace.seq': n.seq,
          'clicktrace.status': n.status,
          'clicktrace.type': n.type,
        },
        n.trace,
      )
      .end()
    settle(entry, n.status, n.error, n.data, n)
  }

  // A topic's frame, handled here; never a notification for the outcome path.
  function receiveTopic(topic: string, raw: Record<string, unknown>): undefined {
    const t = topics.get(topic)
    const n = parseNotification(raw)
    if (t && raw.status === 'refused') {
      const e = parseError(raw.error, 'refused') // the server's message names the topic
      loud(new ClicktraceError(e.code, `clicktrace: ${e.message}`))
    }
    if (!t || !n) return
    const { resync, deliver } = t.at.take(n)
    if (resync) resyncAll()
    if (deliver && n.status === 'update') for (const l of t.listeners) run(() => l(n))
  }

  function settle(entry: Entry, status: CommandOutcome['status'], error?: CommandError, data?: unknown, n?: Notification): void {
    const { record } = entry
    const late = entry.done
    // Once settled, only a confirmation counts, and only after an outcome that was not the
    // server's word on the command: the deadline, a lost response, a dead letter (which an
    // operator may send again). The server did it, so show its authoritative state.
    if (late && (status !== 'confirmed' || !SUPERSEDED.includes(record.error?.code as string))) return
    entry.done = true
    clearTimeout(entry.timer)
    Object.assign(record, { status, error, data, settledAt: Date.now() })
    run(() => entry.effects.settle(status, data, late, n?.version, n?.key ?? record.entity))
    emit(record)
    if (late) return
    // Every outcome but a confirmation comes with its error (so an ERROR span status).
    entry.span.end(error?.code, { 'clicktrace.outcome': status })
    entry.resolve({ status, correlationId: record.correlationId, error, data })
    retired.push(record.correlationId)
    while (retired.length > MAX_RETIRED) entries.delete(retired.shift()!)
  }

  // Session and transport now, so the first click waits for neither (failures said loudly; a
  // command later tries the session again).
  const warm = (): Promise<void> =>
    sessions.get().then((s) => {
      connect(s.clientId)
      return ready
    }, loud)
  if (options.prewarm) void warm()

  // The session (and the transport's first attempt) before the POST, as a child span when the
  // click has to wait for it; a refused 401 renews it once.
  async function setUp(entry: Entry, renew = false): Promise<Session> {
    const wait = renew || waiting || !sessions.fresh()
    const span = wait
      ? entry.span.child('clicktrace session', 1 /* INTERNAL */, { 'clicktrace.correlation_id': entry.record.correlationId })
      : undefined
    try {
      const s = await sessions.get(renew)
      connect(s.clientId)
      await ready
      span?.end()
      return s
    } catch (e) {
      span?.end(SESSION_UNAVAILABLE)
      throw e
    }
  }

  async function send(entry: Entry, request: CommandRequest, method: string, deadline: number): Promise<void> {
    // Set up already (a fresh session, the transport past its first attempt): the POST leaves
    // in the click's own task. Awaiting would let the page render the pending state first.
    let session = !waiting && disconnect && sessions.fresh() ? sessions.known() : undefined
    if (!session) {
      try {
        session = await setUp(entry)
      } catch (e) {
        loud(e as Error) // the session's failures are ClicktraceErrors
        return settle(entry, 'rejected', { code: SESSION_UNAVAILABLE, message: String(e) })
      }
      if (entry.done) return
    }
    const error = await sendCommand({
      fetcher,
      request,
      method,
      deadline,
      session,
      correlationId: entry.record.correlationId,
      propagateTo: options.propagateTo ?? [],
      span: entry.span,
      renew: () => setUp(entry, true),
      settled: () => entry.done,
    })
    if (error) settle(entry, 'rejected', error)
  }

  return {
    connection,
    close,
    connect: warm,
    flush: () => tracing.flush(),
    watch(topic, listener) {
      let t = topics.get(topic)
      if (!t) {
        t = { at: resume(), listeners: new Set() }
        topics.set(topic, t)
        if (disconnect && connection.status === 'connected') sendWatch(topic)
        else sessions.get().then((s) => connect(s.clientId), loud) // sent once connected
      }
      t.listeners.add(listener)
      return () => {
        t.listeners.delete(listener)
        if (t.listeners.size || topics.get(topic) !== t) return
        topics.delete(topic)
        disconnect?.send?.({ unwatch: topic })
      }
    },
    onResync(hook) {
      resyncHooks.add(hook)
      return () => resyncHooks.delete(hook)
    },
    command<D>(req: CommandRequest, effects: CommandEffects<D>): CommandHandle<D> {
      const correlationId = newCorrelationId()
      const method = (req.method ?? 'POST').toUpperCase()
      const name = req.name ?? `${method} ${req.url}`
      const entity = req.entity?.toString()
      const span = tracing.start(name, { 'clicktrace.correlation_id': correlationId, 'clicktrace.entity': entity })
      // error, data, settledAt are added at settlement (Vue tracks added keys).
      const record = reactive({
        correlationId,
        traceparent: formatTraceparent(span.context),
        name,
        entity,
        status: 'pending',
        startedAt: Date.now(),
      } as CommandRecord<unknown>)
      let resolve!: (o: CommandOutcome<unknown>) => void
      const settled = new Promise<CommandOutcome<unknown>>((r) => (resolve = r))
      const entry: Entry = { record, span, effects: effects as CommandEffects<unknown>, resolve, done: false }
      effects.optimistic(correlationId) // a throwing optimistic change throws here, before anything is sent
      entries.set(correlationId, entry)
      records?.(record)
      emit(record)
      const deadlineMs = req.deadlineMs ?? options.deadlineMs ?? DEFAULT_DEADLINE_MS
      entry.timer = setTimeout(
        () => settle(entry, 'timed_out', { code: TIMED_OUT, message: `no outcome within ${deadlineMs} ms` }),
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
