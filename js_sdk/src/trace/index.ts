// Picks who records the browser's spans: an @opentelemetry/api provider when one is
// registered (or passed), else the built-in recorder posting OTLP/JSON to the API.
import type { ClicktraceOptions } from '../types.js'
import { otlpExporter, type OtlpExporter } from './otlp.js'
import { otelTracing, registeredTracerProvider } from './otel.js'
import { recorderTracing } from './recorder.js'
import type { Tracing } from './types.js'

export const VERSION = '0.1.0'

export function makeTracing(o: ClicktraceOptions, fetcher: typeof fetch, token: () => string | undefined): Tracing {
  const choice = o.tracerProvider ?? 'auto'
  const provider = choice === 'auto' ? registeredTracerProvider() : choice === 'builtin' ? undefined : choice
  if (provider) return otelTracing(provider, VERSION)
  const url = o.tracesUrl ?? '/clicktrace/v1/traces'
  let exporter: OtlpExporter | undefined
  return recorderTracing(o.sampleRate ?? 1, (span) => {
    if (url === false) return
    exporter ??= otlpExporter({
      url, serviceName: o.serviceName ?? 'browser', scopeVersion: VERSION, fetch: fetcher,
      headers: (): Record<string, string> => {
        const t = token()
        return t ? { 'x-clicktrace-client': t } : {}
      },
      onError: o.onError,
    })
    exporter.add(span)
  })
}
