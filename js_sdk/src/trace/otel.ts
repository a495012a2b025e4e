// Bridge to a registered @opentelemetry/api tracer provider, without importing the API (it
// would not fit the size budget): the API keeps its globals under a documented symbol, and a
// Context is any object with getValue/setValue/deleteValue keyed by the same Symbol.for keys.
// Imported only by apps that use it (`otelTracing()` from `clicktrace-pinia/otel`).
import type { SpanContext } from '../ids.js'
import { FLAG_SAMPLED, SCOPE_NAME } from '../protocol.js'
import { type ActionSpan, type Attributes, type Tracing, VERSION } from './types.js'

interface OtelSpanContext {
  traceId: string
  spanId: string
  traceFlags: number
  isRemote?: boolean
}
interface OtelSpan {
  spanContext(): OtelSpanContext
  setAttributes(a: Attributes): unknown
  setStatus(s: { code: number; message?: string }): unknown
  end(): void
}
interface OtelContext {
  getValue(key: symbol): unknown
  setValue(key: symbol, value: unknown): OtelContext
  deleteValue(key: symbol): OtelContext
}
/** The part of `@opentelemetry/api`'s TracerProvider used here (structurally compatible). */
export interface TracerProviderLike {
  /** An SDK provider's; called by `flush()` when present. */
  forceFlush?(): Promise<void>
  /** The API's global proxy provider hands out the registered one. */
  getDelegate?(): TracerProviderLike
  getTracer(
    name: string,
    version?: string,
  ): {
    startSpan(name: string, options?: { kind?: number; attributes?: Attributes; root?: boolean }, context?: OtelContext): OtelSpan
  }
}

const API_KEY = Symbol.for('opentelemetry.js.api.1')
const SPAN_KEY = Symbol.for('OpenTelemetry Context Key SPAN')

interface ApiGlobals {
  trace?: TracerProviderLike
  context?: { with<T>(context: OtelContext, fn: () => T): T }
}
const globals = (): ApiGlobals | undefined => (globalThis as Record<symbol, ApiGlobals | undefined>)[API_KEY]

/** The globally registered provider, if an app called `trace.setGlobalTracerProvider`. */
export const registeredTracerProvider = (): TracerProviderLike | undefined => globals()?.trace

// An immutable Context as @opentelemetry/api defines it.
const context = (values: Record<symbol, unknown>): OtelContext => ({
  getValue: (k) => values[k],
  setValue: (k, v) => context({ ...values, [k]: v }),
  deleteValue: (k) => context({ ...values, [k]: undefined }),
})

const parentContext = (p: SpanContext): OtelContext =>
  context({
    [SPAN_KEY]: {
      spanContext: () => ({ traceId: p.traceId, spanId: p.spanId, traceFlags: p.sampled ? FLAG_SAMPLED : 0, isRemote: true }),
      isRecording: () => false,
    },
  })

function wrap(s: OtelSpan, t: ReturnType<TracerProviderLike['getTracer']>): ActionSpan {
  const sc = s.spanContext()
  const ctx: SpanContext = { traceId: sc.traceId, spanId: sc.spanId, sampled: (sc.traceFlags & FLAG_SAMPLED) !== 0 }
  const manager = globals()?.context
  return {
    context: ctx,
    ...(manager ? { run: (fn) => manager.with(parentContext(ctx), fn) } : {}),
    child: (name, kind, attributes, parent) =>
      wrap(
        t.startSpan(
          name,
          { kind: kind - 1, ...(attributes ? { attributes } : {}) },
          parentContext(parent && parent.traceId === ctx.traceId ? parent : ctx),
        ),
        t,
      ),
    end(error, more) {
      if (more) s.setAttributes(more)
      // @opentelemetry/api SpanStatusCode: OK = 1, ERROR = 2 (same numbers as OTLP).
      s.setStatus(error === undefined ? { code: 1 } : { code: 2, message: error })
      s.end()
    },
  }
}

/**
 * Record the browser's spans through an @opentelemetry/api tracer provider: the one given, or
 * the one registered globally (`trace.setGlobalTracerProvider`, e.g. `WebTracerProvider.register()`).
 */
export function otelTracing(provider: TracerProviderLike | undefined = registeredTracerProvider()): Tracing {
  if (!provider)
    throw new TypeError('clicktrace: otelTracing() found no tracer provider: register one with @opentelemetry/api first, or pass it')
  const tracer = provider.getTracer(SCOPE_NAME, VERSION)
  return {
    flush: async () => (provider.forceFlush ? provider.forceFlush() : provider.getDelegate?.().forceFlush?.()),
    // A click starts a new trace: root, whatever context the page happens to have active.
    start: (name, attributes) => wrap(tracer.startSpan(name, { kind: 0, root: true, ...(attributes ? { attributes } : {}) }), tracer),
  }
}
