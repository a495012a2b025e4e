// Who records the browser's spans: the `tracing` given (`otelTracing()` from
// `clicktrace-pinia/otel`, imported only by apps that use OpenTelemetry), else the built-in
// recorder posting OTLP/JSON to the API.
import { TRACES_URL } from '../protocol.js'
import type { ClicktraceOptions } from '../types.js'
import { type OtlpExporter, otlpExporter } from './otlp.js'
import { recorderTracing } from './recorder.js'
import type { Tracing } from './types.js'

import { VERSION } from './version.js'

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
          return t ? { 'x-clicktrace-client': t } : {}
        },
        onError: o.onError,
      })
      exporter.add(span)
    },
  )
}
