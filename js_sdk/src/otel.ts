// clicktrace-pinia/otel: record the browser's spans through an @opentelemetry/api tracer
// provider instead of the built-in recorder: `createClicktrace({ transport, tracing: otelTracing() })`.
// A separate entry so that apps without OpenTelemetry do not bundle the bridge.
export { otelTracing, type TracerProviderLike } from './trace/otel.js'
export type { Tracing } from './trace/types.js'
