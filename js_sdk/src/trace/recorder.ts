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

export interface OtlpExporterOptions {
  url: string
  serviceName: string
  scopeVersion: string
  /** Headers added to every export (the client token), resolved at send time. */
  headers: () => Record<string, string>
  fetch: typeof fetch
  onError?: (error: unknown) => void
}

/** Epoch milliseconds (fractional) → nanoseconds as a decimal string (µs precision; a double
 * cannot hold epoch nanoseconds exactly). */
export const toNanos = (ms: number): string => String(BigInt(Math.round(ms * 1e3)) * 1000n)

export const otlpAttributes = (a: Attributes): OtlpSpan['attributes'] =>
  Object.entries(a)
    .filter(([, v]) => v !== undefined)
    .map(([key, v]) => ({
      key,
      value:
        typeof v === 'string'
          ? { stringValue: v }
          : typeof v === 'boolean'
            ? { boolValue: v }
            : Number.isInteger(v)
              ? { intValue: String(v) }
              : { doubleValue: v },
    }))

export const encodeOtlp = (spans: OtlpSpan[], serviceName: string, version: string): object => ({
  resourceSpans: [
    {
      resource: { attributes: otlpAttributes({ 'service.name': serviceName }) },
      scopeSpans: [{ scope: { name: SCOPE_NAME, version }, spans }],
    },
  ],
})

export interface OtlpExporter {
  add(span: OtlpSpan): void
  /** Post what is queued now (also done when the page is hidden or the batch is full);
   * resolves when it was answered (failures go to onError). */
  flush(): Promise<void>
}

export function otlpExporter(o: OtlpExporterOptions): OtlpExporter {
  let queue: OtlpSpan[] = []
  let timer: ReturnType<typeof setTimeout> | undefined
  async function flush(): Promise<void> {
    clearTimeout(timer)
    timer = undefined
    const batch = queue
    queue = []
    if (batch.length === 0) return
    try {
      const r = await o.fetch(o.url, {
        method: 'POST',
        keepalive: true, // survives the tab closing
        headers: { 'content-type': 'application/json', ...o.headers() },
        body: JSON.stringify(encodeOtlp(batch, o.serviceName, o.scopeVersion)),
      })
      if (!r.ok) o.onError?.(new Error(`trace export: HTTP ${r.status}`))
    } catch (e) {
      o.onError?.(e)
    }
  }
  // A hidden page may never come back: flush then, while keepalive requests still run.
  if (typeof document !== 'undefined') {
    document.addEventListener('visibilitychange', () => document.visibilityState === 'hidden' && void flush())
  }
  return {
    flush,
    add(span) {
      queue.push(span)
      if (queue.length >= OTLP_MAX_BATCH) void flush()
      else timer ??= setTimeout(flush, OTLP_FLUSH_DELAY_MS)
    },
  }
}

const now = (): number => performance.timeOrigin + performance.now()

function span(
  name: string,
  kind: Kind,
  context: SpanContext,
  parentSpanId: string | undefined,
  attributes: Attributes,
  sink: (s: OtlpSpan) => void,
): ActionSpan {
  const start = toNanos(now())
  let ended = !context.sampled
  return {
    context,
    child(childName, childKind, a = {}, parent = context) {
      // Continue from `parent` only within this trace; never adopt a foreign trace's span.
      const parentId = parent.traceId === context.traceId ? parent.spanId : context.spanId
      return span(childName, childKind, newSpanContext(context.sampled, context.traceId), parentId, { ...a }, sink)
    },
    end(error, more) {
      if (ended) return
      ended = true
      Object.assign(attributes, more)
      sink({
        traceId: context.traceId,
        spanId: context.spanId,
        ...(parentSpanId ? { parentSpanId } : {}),
        name,
        kind,
        startTimeUnixNano: start,
        endTimeUnixNano: toNanos(now()),
        attributes: otlpAttributes(attributes),
        status: error === undefined ? { code: 1 } : { code: 2, message: error },
      })
    },
  }
}

export function recorderTracing(
  sampleRate: number,
  flush: () => Promise<void>,
  sink: (s: OtlpSpan) => void,
  random = Math.random,
): Tracing {
  return {
    flush,
    start(name, attributes = {}) {
      const sampled = sampleRate >= 1 || random() < sampleRate
      return span(name, 1, newSpanContext(sampled), undefined, { ...attributes }, sink)
    },
  }
}

export function makeTracing(o: ClicktraceOptions, fetcher: typeof fetch, token: () => string | undefined): Tracing {
  if (o.tracing) return o.tracing
  const url = o.tracesUrl ?? TRACES_URL
  let exporter: OtlpExporter | undefined
  return recorderTracing(
    o.sampleRate ?? 1,
    async () => exporter?.flush(),
    (span) => {
      if (url === false) return
      exporter ??= otlpExporter({
        url,
        serviceName: o.serviceName ?? 'browser',
        scopeVersion: VERSION,
        fetch: fetcher,
        headers: (): Record<string, string> => {
          const t = token()
          return t ? { [CLIENT_HEADER]: t } : {}
        },
        onError: o.onError,
      })
      exporter.add(span)
    },
  )
}
