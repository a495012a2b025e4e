// With the standard browser OpenTelemetry setup (WebTracerProvider.register() and the fetch
// instrumentation), the command's request stays in the click's trace: the instrumentation's
// span nests under ours and the traceparent it injects belongs to the same trace.
import { context, propagation, trace } from '@opentelemetry/api'
import { FetchInstrumentation } from '@opentelemetry/instrumentation-fetch'
import { InMemorySpanExporter, SimpleSpanProcessor, WebTracerProvider } from '@opentelemetry/sdk-trace-web'
import { afterEach, describe, expect, it } from 'vitest'
import { createClient } from '../../src/client.js'
import { parseTraceparent } from '../../src/ids.js'
import { otelTracing } from '../../src/otel.js'
import { FakeTransport, fakeFetch, flush, type Sent } from '../fakes.js'

describe('with WebTracerProvider and FetchInstrumentation registered', () => {
  const realFetch = globalThis.fetch
  let instrumentation: FetchInstrumentation | undefined
  afterEach(() => {
    instrumentation?.disable()
    globalThis.fetch = realFetch
    trace.disable()
    context.disable()
    propagation.disable()
  })

  it('keeps the request, its instrumentation span and the server in the click trace', async () => {
    const net = fakeFetch()
    globalThis.fetch = net.fetch // what the instrumentation wraps
    const exporter = new InMemorySpanExporter()
    const provider = new WebTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
    provider.register()
    instrumentation = new FetchInstrumentation()
    instrumentation.setTracerProvider(provider)
    instrumentation.enable()
    const client = createClient({ transport: new FakeTransport(), tracing: otelTracing() }) // default fetch: the patched global
    const h = client.command({ url: '/api/x', name: 'rename' }, { optimistic: () => {}, settle: () => {} })
    await flush()
    // The instrumentation ends its span once resource timings are in (or ~300 ms later).
    for (let i = 0; i < 50 && exporter.getFinishedSpans().filter((sp) => sp.instrumentationScope.name.includes('fetch')).length < 2; i++) {
      await new Promise((r) => setTimeout(r, 50))
    }
    const cmd: Sent = net.commands()[0]!
    const sent = parseTraceparent(cmd.headers.traceparent)!
    const click = parseTraceparent(h.traceparent)!
    expect(sent.traceId).toBe(click.traceId)
    const spans = exporter.getFinishedSpans()
    const ours = spans.find((s) => s.name === 'HTTP POST' && s.instrumentationScope.name === 'clicktrace-pinia')!
    expect(ours.parentSpanContext?.spanId).toBe(click.spanId)
    // (The session request is instrumented too, in a trace of its own.)
    const instrumented = spans.find((s) => s.instrumentationScope.name.includes('fetch') && s.spanContext().traceId === click.traceId)!
    expect(instrumented.spanContext().spanId).toBe(sent.spanId)
    expect(instrumented.parentSpanContext?.spanId).toBe(ours.spanContext().spanId)
    expect(cmd.headers['x-correlation-id']).toBe(h.correlationId)
  })
})
