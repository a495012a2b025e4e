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

/** Epoch milliseconds (fractional) → nanoseconds as a decimal string, without losing precision. */
export function toNanos(ms: number): string {
  const whole = Math.floor(ms)
  const frac = Math.min(999_999, Math.round((ms - whole) * 1e6))
  return whole === 0 ? String(frac) : `${whole}${String(frac).padStart(6, '0')}`
}

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
      resource: { attributes: attrs({ 'service.name': serviceName, 'telemetry.sdk.name': 'clicktrace-pinia', 'telemetry.sdk.language': 'webjs' }) },
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

export class OtlpExporter {
  private queue: RecordedSpan[] = []
  private timer: ReturnType<typeof setTimeout> | undefined

  constructor(private readonly o: OtlpExporterOptions) {
    // A hidden page may never come back: flush then, while keepalive requests still run.
    if (typeof document !== 'undefined') {
      document.addEventListener('visibilitychange', () => {
        if (document.visibilityState === 'hidden') this.flush()
      })
    }
  }

  add(span: RecordedSpan): void {
    this.queue.push(span)
    if (this.queue.length >= OTLP_MAX_BATCH) this.flush()
    else this.timer ??= setTimeout(() => this.flush(), OTLP_FLUSH_DELAY_MS)
  }

  flush(): void {
    clearTimeout(this.timer)
    this.timer = undefined
    const batch = this.queue.splice(0, this.queue.length)
    if (batch.length === 0) return
    const body = JSON.stringify(encodeOtlp(batch, this.o.serviceName, this.o.scopeVersion))
    try {
      this.o
        .fetch(this.o.url, {
          method: 'POST',
          keepalive: true,
          headers: { 'content-type': 'application/json', ...this.o.headers() },
          body,
        })
        .then((r) => {
          if (!r.ok) this.o.onError?.(new Error(`trace export: HTTP ${r.status}`))
        }, this.o.onError)
    } catch (e) {
      this.o.onError?.(e)
    }
  }
}
