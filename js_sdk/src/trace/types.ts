// The browser's part of the trace, independent of who records it (built-in recorder or a
// registered @opentelemetry/api tracer provider).
import type { SpanContext } from '../ids.js'

/** OTLP SpanKind numbers. */
export const Kind = { Internal: 1, Client: 3, Consumer: 5 } as const
export type Kind = (typeof Kind)[keyof typeof Kind]

export type Attributes = Record<string, string | number | boolean | undefined>

export interface ActionSpan {
  /** The context sent as `traceparent`. */
  readonly context: SpanContext
  set(attributes: Attributes): void
  /** A child span; `parent` continues from another context of the same trace instead. */
  child(name: string, kind: Kind, attributes?: Attributes, parent?: SpanContext): ActionSpan
  /** `error` marks the span failed (OTLP status ERROR with that message). */
  end(error?: string): void
}

export interface Tracing {
  start(name: string, attributes?: Attributes): ActionSpan
}
