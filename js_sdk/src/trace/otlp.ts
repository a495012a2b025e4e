// OTLP/JSON ExportTraceServiceRequest (proto3 JSON: hex ids, int64 nanoseconds as strings),
// batched and posted with fetch keepalive so a closing tab still delivers.
import type { Attributes, Kind } from './types.js'

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
      scopeSpans: [{ scope: { name: 'clicktrace-pinia', version }, spans }],
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
