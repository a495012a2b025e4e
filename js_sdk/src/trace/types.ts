// The browser's part of the trace, independent of who records it (built-in recorder or a
// registered @opentelemetry/api tracer provider).
import type { SpanContext } from '../ids.js'

/** OTLP SpanKind numbers: INTERNAL 1, CLIENT 3, CONSUMER 5 (literals in code: an object
 * of names would survive minification). */
export type Kind = 1 | 3 | 5

export type Attributes = Record<string, string | number | boolean | undefined>

export interface ActionSpan {
  /** The context sent as `traceparent`. */
  readonly context: SpanContext
  /** A child span; `parent` continues from another context of the same trace instead. */
  child(name: string, kind: Kind, attributes?: Attributes, parent?: SpanContext): ActionSpan
  /** Run `fn` with this span as the active OpenTelemetry context (so a registered fetch
   * instrumentation nests under it); absent when no context manager is registered. */
  run?<T>(fn: () => T): T
  /** `error` marks the span failed (OTLP status ERROR with that message). */
  end(error?: string, attributes?: Attributes): void
}

export interface Tracing {
  start(name: string, attributes?: Attributes): ActionSpan
  /** Export what has ended so far. */
  flush(): Promise<void>
}

/** The scope version of the spans either recorder records (package.json's version). */
export const VERSION = '0.1.0'
