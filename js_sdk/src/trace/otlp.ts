// OTLP/JSON ExportTraceServiceRequest (proto3 JSON: hex ids, int64 nanoseconds as strings),
// batched and posted with fetch keepalive so a closing tab still delivers.
import type { Attributes, Kind } from './types.js'

export const OTLP_MAX_BATCH = 64
export const OTLP_FLUSH_DELAY_MS = 2_000

export interface RecordedSpan {
  traceId: string
  spanId: string
  parentSpanId?: string
  name: string
  kind: Kind
  startMs: number
  endMs: number
  attributes: Attributes
  error?: string
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

function attrs(a: Attributes): Array<{ key: string; value: object }> {
  const out: Array<{ key: string; value: object }> = []
  for (const [key, v] of Object.entries(a)) {
    if (v === undefined) continue
    const value =
      typeof v === 'string' ? { stringValue: v }
      : typeof v === 'boolean' ? { boolValue: v }
      : Number.isInteger(v) ? { intValue: String(v) }
      : { doubleValue: v }
    out.push({ key, value })
  }
  return out
}

export function encodeOtlp(spans: readonly RecordedSpan[], serviceName: string, version: string): object {
  return {
    resourceSpans: [{
      resource: { attributes: attrs({ 'service.name': serviceName }) },
      scopeSpans: [{
        scope: { name: 'clicktrace-pinia', version },
        spans: spans.map((s) => ({
          traceId: s.traceId,
          spanId: s.spanId,
          ...(s.parentSpanId ? { parentSpanId: s.parentSpanId } : {}),
          name: s.name,
          kind: s.kind,
          startTimeUnixNano: toNanos(s.startMs),
          endTimeUnixNano: toNanos(s.endMs),
          attributes: attrs(s.attributes),
          status: s.error === undefined ? { code: 1 } : { code: 2, message: s.error },
        })),
      }],
    }],
  }
}

export interface OtlpExporter {
  add(span: RecordedSpan): void
  /** Post what is queued now (also done when the page is hidden or the batch is full). */
  flush(): void
}

export function otlpExporter(o: OtlpExporterOptions): OtlpExporter {
  let queue: RecordedSpan[] = []
  let timer: ReturnType<typeof setTimeout> | undefined
  function flush(): void {
    clearTimeout(timer)
    timer = undefined
    const batch = queue
    queue = []
    if (batch.length === 0) return
    try {
      o.fetch(o.url, {
        method: 'POST',
        keepalive: true, // survives the tab closing
        headers: { 'content-type': 'application/json', ...o.headers() },
        body: JSON.stringify(encodeOtlp(batch, o.serviceName, o.scopeVersion)),
      }).then((r) => {
        if (!r.ok) o.onError?.(new Error(`trace export: HTTP ${r.status}`))
      }, o.onError)
    } catch (e) {
      o.onError?.(e)
    }
  }
  // A hidden page may never come back: flush then, while keepalive requests still run.
  if (typeof document !== 'undefined') {
    document.addEventListener('visibilitychange', () => document.visibilityState === 'hidden' && flush())
  }
  return {
    flush,
    add(span) {
      queue.push(span)
      if (queue.length >= OTLP_MAX_BATCH) flush()
      else timer ??= setTimeout(flush, OTLP_FLUSH_DELAY_MS)
    },
  }
}
