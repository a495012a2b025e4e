// Public types shared by the framework-free core and the Pinia glue.
import type { PropagateTo } from './http.js'
import type { Notification } from './notification.js'
import type { TestHookInstaller } from './testing/hook.js'
import type { Tracing } from './trace/types.js'
import type { ConnectionStatus, Transport } from './transport/types.js'

export type CommandStatus = 'pending' | 'confirmed' | 'rejected' | 'timed_out'

export interface CommandError {
  /** snake_case: the server's `error.code`, or `timed_out`, `network_error`, `session_unavailable`
   * (protocol.ts). */
  code: string
  message: string
}

/** One command as a component sees it. Reactive when it comes from a store. */
export interface CommandRecord<D = unknown> {
  readonly correlationId: string
  /** The action span's W3C traceparent (its trace id is the click's; the request itself
   * carries the context of its HTTP CLIENT span, a child of this one). */
  readonly traceparent: string
  readonly name: string
  readonly entity: string | undefined
  status: CommandStatus
  error: CommandError | undefined
  /** The authoritative data of the confirmation, when the server sent some. */
  data: D | undefined
  readonly startedAt: number
  settledAt: number | undefined
}

export interface CommandOutcome<D = unknown> {
  status: Exclude<CommandStatus, 'pending'>
  correlationId: string
  error: CommandError | undefined
  data: D | undefined
}

export interface CommandHandle<D = unknown> {
  readonly correlationId: string
  readonly traceparent: string
  /** Reactive: follows the command from `pending` to its outcome (and a late confirmation). */
  readonly record: CommandRecord<D>
  readonly status: CommandStatus
  /** Resolves once, with the first outcome; never rejects. */
  readonly settled: Promise<CommandOutcome<D>>
}

/** What to send: the HTTP part of a command. */
export interface CommandRequest {
  url: string
  /** Default POST. */
  method?: string
  /** The command's own fields; `metadata` is added. */
  body?: Record<string, unknown>
  /** Shown in spans and records, e.g. `rename`. Default: `METHOD path`. */
  name?: string
  /** Which entity the command touches (e.g. `product:3`), for per-entity state. */
  entity?: string | number
  deadlineMs?: number
  causationId?: string
}

export interface ClicktraceOptions {
  /** Default `/clicktrace/session`. */
  sessionUrl?: string
  /** How notifications arrive: `socketIoTransport()` or `webSocketTransport()` (each imported
   * only where used, so an app bundles one), or your own. */
  transport: Transport
  /** Other origins (or URL patterns) allowed to receive trace and correlation headers. */
  propagateTo?: PropagateTo
  /** Open the session and connect the transport at start (when the first store is used), so
   * the first click waits for neither. Default false: nothing is sent before the first command. */
  prewarm?: boolean
  /** Default deadline of a command, in ms. Default 15000. */
  deadlineMs?: number
  /** Fraction of actions traced, 0..1. Default 1. */
  sampleRate?: number
  /** Where the built-in recorder posts OTLP/JSON; `false` disables it. Default `/clicktrace/v1/traces`. */
  tracesUrl?: string | false
  /** `service.name` of the browser's spans. Default `browser`. */
  serviceName?: string
  /** Who records the spans: `otelTracing()` (from `clicktrace-pinia/otel`) for an
   * @opentelemetry/api provider; default the built-in recorder (OTLP/JSON to `tracesUrl`). */
  tracing?: Tracing
  /** Every status change of every command. */
  onStatus?: (record: Readonly<CommandRecord>) => void
  /** Failures outside a command: session, transport, trace export (the ones a user must fix,
   * a `ClicktraceError`, are also written to the console once). */
  onError?: (error: unknown) => void
  /** For end-to-end tests: `exposeTestHook()` from `clicktrace-pinia/testing` puts the page's
   * command records and a span flush on `window.__clicktrace`. Default none. */
  testHook?: TestHookInstaller
  /** Settled commands kept per store for display. Default 20. */
  keepSettled?: number
  /** Injected fetch (tests); default `globalThis.fetch`. */
  fetch?: typeof fetch
}

// The framework-free client (`createClient`, in clicktrace-pinia/core) and what it asks of the
// state layer that drives it.

export interface CommandEffects<D> {
  /** Apply the optimistic change (called once, synchronously, at the click). */
  optimistic(correlationId: string): void
  /** The command settled; `late` is a confirmation after a timeout or a lost response;
   * `version` (of `key`, default the command's entity) when the server versioned the outcome. */
  settle(status: CommandOutcome['status'], data: D | undefined, late: boolean, version?: number, key?: string): void
}

export interface ClicktraceClient {
  readonly connection: { status: ConnectionStatus }
  /** Register a hook run when the server asks for a resync; returns its removal. */
  onResync(hook: () => unknown): () => void
  command<D>(req: CommandRequest, effects: CommandEffects<D>): CommandHandle<D>
  /** Open the session and connect the transport now (what `prewarm` does at start); resolves
   * after the transport's first attempt, never rejects (failures go to `onError`). */
  connect(): Promise<void>
  /** Receive the updates of `topic` (connecting now if need be); returns the unwatch. */
  watch(topic: string, listener: (update: Notification) => void): () => void
  /** Export the ended spans now (tests: before asserting on the trace). */
  flush(): Promise<void>
  /** Close the transport (a later command reconnects). */
  close(): void
}
