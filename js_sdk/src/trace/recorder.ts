// The built-in recorder: mints W3C ids itself, and batches ended, sampled spans as an OTLP/JSON
// ExportTraceServiceRequest (proto3 JSON: hex ids, int64 nanoseconds as strings) posted with
// fetch keepalive, so a closing tab still delivers. Unsampled actions still get ids so the
// traceparent is valid. `makeTracing` picks who records: the `tracing` given (`otelTracing()`
// from `clicktrace-pinia/otel`, imported only by apps that use OpenTelemetry), else this one.
import { newSpanContext, type SpanContext } from '../ids.js'
import { CLIENT_HEADER, SCOPE_NAME, TRACES_URL } from '../protocol.js'
import type { ClicktraceOptions } from '../types.js'
import { type ActionSpan, type Attributes, type Kind, type Tracing, VERSION } from './types.js'

export const OTLP_MAX_BATCH = 64
export const OTLP_FLUSH_DELAY_MS = 2_000

/** One span in OTLP/JSON form. */
export interface OtlpSpan {
  traceId: string
  spanId: string
  parentSpanId?: string
  name: string
  kind: Kind
  startTimeUnixNano: string
  endTimeUnixNano: string
  attributes: Array<{ key: string; value: object }>
  /** OK = 1, ERROR = 2 */
  status: { code: 1 | 2; message?: string }
}

/** Epoch milliseconds (fractional) → nanoseconds as a decimal string (µs precision; a double
 * cannot hold epoch nanoseconds exactly, but epoch microseconds, < 2^53, it can). */
export const toNanos = (ms: number): string => `${Math.round(ms * 1e3)}000`

export const otlpAttributes = (a: Attributes): OtlpSpan['attributes'] =>
  Object.entries(a).flatMap(([key, v]) =>
    v === undefined
      ? []
      : {
          key,
          value:
            typeof v === 'string'
              ? { stringValue: v }
              : typeof v === 'boolean'
                ? { boolValue: v }
                : Number.isInteger(v)
                  ? { intValue: String(v) }
                  : { doubleValue: v },
        },
  )

export const encodeOtlp = (spans: OtlpSpan[], serviceName: string, version: string): object => ({
  resourceSpans: [
    {
      resource: { attributes: otlpAttributes({ 'service.name': serviceName }) },
      scopeSpans: [{ scope: { name: SCOPE_NAME, version }, spans }],
    },
  ],
})

const now = (): string => toNanos(performance.timeOrigin + performance.now())

// `attributes` is the span's own (callers pass a fresh object): `end` adds to it.
function span(
  name: string,
  kind: Kind,
  context: SpanContext,
  parentSpanId: string | undefined,
  attributes: Attributes,
  sink: (s: OtlpSpan) => void,
): ActionSpan {
  const start = now()
  let ended = !context.sampled
  return {
    context,
    child(childName, childKind, a = {}, parent = context) {
      // Continue from `parent` only within this trace; never adopt a foreign trace's span.
      const parentId = parent.traceId === context.traceId ? parent.spanId : context.spanId
      return span(childName, childKind, newSpanContext(context.sampled, context.traceId), parentId, a, sink)
    },
    end(error, more) {
      if (ended) return
      ended = true
      Object.assign(attributes, more)
      sink({
        traceId: context.traceId,
        spanId: context.spanId,
        parentSpanId, // undefined for the root: left out of the JSON
        name,
        kind,
        startTimeUnixNano: start,
        endTimeUnixNano: now(),
        attributes: otlpAttributes(attributes),
        status: error === undefined ? { code: 1 } : { code: 2, message: error },
      })
    },
  }
}

/**
 * The built-in recorder (or `o.tracing` when given): samples at `o.sampleRate`, queues ended
 * spans and posts them to `o.tracesUrl` in batches of OTLP_MAX_BATCH, or OTLP_FLUSH_DELAY_MS
 * after the first, or when the page is hidden; `flush()` resolves once the post was answered
 * (failures go to `o.onError`). `token` is the client token, sent as a header when known.
 */
export function makeTracing(
  o: ClicktraceOptions,
  fetcher: typeof fetch,
  token: () => string | undefined,
  random: () => number = Math.random,
): Tracing {
  if (o.tracing) return o.tracing
  const url = o.tracesUrl ?? TRACES_URL
  const rate = o.sampleRate ?? 1
  let queue: OtlpSpan[] = []
  let timer: ReturnType<typeof setTimeout> | undefined
  let listening = false
  async function flush(): Promise<void> {
    clearTimeout(timer)
    timer = undefined
    const batch = queue
    queue = []
    if (batch.length === 0) return // (nothing is queued when url is false)
    const t = token()
    try {
      const r = await fetcher(url as string, {
        method: 'POST',
        keepalive: true, // survives the tab closing
        headers: t ? { 'content-type': 'application/json', [CLIENT_HEADER]: t } : { 'content-type': 'application/json' },
        body: JSON.stringify(encodeOtlp(batch, o.serviceName ?? 'browser', VERSION)),
      })
      if (!r.ok) o.onError?.(new Error(`trace export: HTTP ${r.status}`))
    } catch (e) {
      o.onError?.(e)
    }
  }
  const sink = (span: OtlpSpan): void => {
    if (url === false) return
    // A hidden page may never come back: flush then, while keepalive requests still run.
    if (!listening && typeof document !== 'undefined') {
      listening = true
      document.addEventListener('visibilitychange', () => document.visibilityState === 'hidden' && void flush())
    }
    if (queue.push(span) >= OTLP_MAX_BATCH) void flush()
    else timer ??= setTimeout(flush, OTLP_FLUSH_DELAY_MS)
  }
  return {
    flush,
    start(name, attributes = {}) {
      return span(name, 1, newSpanContext(rate >= 1 || random() < rate), undefined, attributes, sink)
    },
  }
}
