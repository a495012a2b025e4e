// Public types shared by the framework-free core and the Pinia glue.
import type { PropagateTo } from './origin.js'
import type { TracerProviderLike } from './trace/otel.js'
import type { Transport } from './transport/types.js'

export type CommandStatus = 'pending' | 'confirmed' | 'rejected' | 'timed_out'

export interface CommandError {
  /** snake_case: the server's `error.code`, or `timed_out`, `network_error`, `session_unavailable`. */
  code: string
  message: string
}

/** One command as a component sees it. Reactive when it comes from a store. */
export interface CommandRecord<D = unknown> {
  readonly correlationId: string
  /** The W3C traceparent sent with the command (the action span's context). */
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

export type ConnectionStatus = 'idle' | 'connecting' | 'connected' | 'disconnected' | 'rejected'

export interface ClicktraceOptions {
  /** Default `/clicktrace/session`. */
  sessionUrl?: string
  /** Default `'socket.io'` (path `/socket.io`, same origin). */
  transport?: 'socket.io' | 'websocket' | Transport
  /** Other origins (or URL patterns) allowed to receive trace and correlation headers. */
  propagateTo?: PropagateTo
  /** Default deadline of a command, in ms. Default 15000. */
  deadlineMs?: number
  /** Fraction of actions traced, 0..1. Default 1. */
  sampleRate?: number
  /** Where the built-in recorder posts OTLP/JSON; `false` disables it. Default `/clicktrace/v1/traces`. */
  tracesUrl?: string | false
  /** `service.name` of the browser's spans. Default `browser`. */
  serviceName?: string
  /** Default `'auto'`: a provider registered with @opentelemetry/api, else the built-in recorder. */
  tracerProvider?: 'auto' | 'builtin' | TracerProviderLike
  /** Every status change of every command. */
  onStatus?: (record: Readonly<CommandRecord>) => void
  /** Failures outside a command: session, transport, trace export. */
  onError?: (error: unknown) => void
  /** Settled commands kept per store for display. Default 20. */
  keepSettled?: number
  /** Injected fetch (tests); default `globalThis.fetch`. */
  fetch?: typeof fetch
}
