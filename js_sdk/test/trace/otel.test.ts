// The bridge against the real OpenTelemetry web SDK, registered the standard way; then with the
// standard browser setup (WebTracerProvider.register() and the fetch instrumentation), where the
// command's request stays in the click's trace: the instrumentation's span nests under ours and
// the traceparent it injects belongs to the same trace.
import { context as otelContext, propagation, trace } from '@opentelemetry/api'
import { FetchInstrumentation } from '@opentelemetry/instrumentation-fetch'
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, WebTracerProvider } from '@opentelemetry/sdk-trace-web'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createClient } from '../../src/client.js'
import { parseTraceparent } from '../../src/ids.js'
import { MemoryTransport, memoryFetch, type SentRequest } from '../../src/testing/index.js'
import { otelTracing, registeredTracerProvider } from '../../src/trace/otel.js'
import { flush } from '../harness.js'

describe('with an @opentelemetry/api tracer provider', () => {
  let exporter: InMemorySpanExporter
  let provider: BasicTracerProvider
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    exporter = new InMemorySpanExporter()
    provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
  })
  afterEach(() => {
    trace.disable()
    vi.useRealTimers()
  })

  it('is found only once one is registered', () => {
    expect(registeredTracerProvider()).toBeUndefined()
    expect(() => otelTracing()).toThrow(/no tracer provider: register one/)
    trace.setGlobalTracerProvider(provider)
    expect(registeredTracerProvider()).toBeDefined()
  })

  it('records through it: the traceparent sent is the HTTP span, children parented as sent, nothing posted', async () => {
    trace.setGlobalTracerProvider(provider)
    const transport = new MemoryTransport()
    const net = memoryFetch()
    const client = createClient({ transport, fetch: net.fetch, tracing: otelTracing() })
    // An unrelated active span must not become the click's parent.
    const outer = trace.getTracer('app').startSpan('page')
    const h = otelContext.with(trace.setSpan(otelContext.active(), outer), () =>
      client.command({ url: '/api/x', name: 'rename' }, { optimistic: () => {}, settle: () => {} }),
    )
    outer.end()
    await flush()
    const sent = parseTraceparent(h.traceparent)!
    const serverSpanId = '1234567812345678'
    transport.notify({ correlation_id: h.correlationId, status: 'confirmed', traceparent: `00-${sent.traceId}-${serverSpanId}-01` })
    const spans = exporter.getFinishedSpans()
    const byName = (n: string) => spans.find((s) => s.name === n)!
    const action = byName('rename')
    expect(action.spanContext()).toMatchObject({ traceId: sent.traceId, spanId: sent.spanId })
    expect(action.parentSpanContext).toBeUndefined()
    expect(action.status.code).toBe(1)
    expect(action.attributes['clicktrace.correlation_id']).toBe(h.correlationId)
    const http = byName('HTTP POST')
    expect(http.kind).toBe(2) // CLIENT
    expect(http.parentSpanContext).toMatchObject({ traceId: sent.traceId, spanId: sent.spanId })
    expect(http.attributes['http.response.status_code']).toBe(202)
    expect(net.commands()[0]!.headers.traceparent).toBe(`00-${sent.traceId}-${http.spanContext().spanId}-03`)
    expect(action.attributes['clicktrace.outcome']).toBe('confirmed')
    for (const s of spans.filter((s) => s.instrumentationScope.name === 'clicktrace-pinia'))
      expect(s.attributes['clicktrace.correlation_id']).toBe(h.correlationId)
    const note = byName('clicktrace notification')
    expect(note.kind).toBe(4) // CONSUMER
    expect(note.parentSpanContext).toMatchObject({ traceId: sent.traceId, spanId: serverSpanId })
    expect(net.sent.filter((s) => s.url.includes('/v1/traces'))).toHaveLength(0)
  })

  it("follows the provider's sampler for the sampled flag", async () => {
    const { AlwaysOffSampler } = await import('@opentelemetry/sdk-trace-web')
    const off = new BasicTracerProvider({ sampler: new AlwaysOffSampler(), spanProcessors: [new SimpleSpanProcessor(exporter)] })
    const client = createClient({ transport: new MemoryTransport(), fetch: memoryFetch().fetch, tracing: otelTracing(off) })
    const h = client.command({ url: '/api/x' }, { optimistic: () => {}, settle: () => {} })
    expect(h.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-02$/)
  })

  it('is used only when asked for: without `tracing` the built-in recorder exports', async () => {
    trace.setGlobalTracerProvider(provider)
    const net = memoryFetch()
    const transport = new MemoryTransport()
    const client = createClient({ transport, fetch: net.fetch })
    const h = client.command({ url: '/api/x' }, { optimistic: () => {}, settle: () => {} })
    await flush()
    transport.notify({ correlation_id: h.correlationId, status: 'confirmed' })
    vi.advanceTimersByTime(5000)
    expect(exporter.getFinishedSpans()).toHaveLength(0)
    expect(net.sent.filter((s) => s.url === '/clicktrace/v1/traces')).toHaveLength(1)
  })
})

describe('with WebTracerProvider and FetchInstrumentation registered', () => {
  const realFetch = globalThis.fetch
  let instrumentation: FetchInstrumentation | undefined
  afterEach(() => {
    instrumentation?.disable()
    globalThis.fetch = realFetch
    trace.disable()
    otelContext.disable()
    propagation.disable()
  })

  it('keeps the request, its instrumentation span and the server in the click trace', async () => {
    const net = memoryFetch()
    globalThis.fetch = net.fetch // what the instrumentation wraps
    const exporter = new InMemorySpanExporter()
    const provider = new WebTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
    provider.register()
    instrumentation = new FetchInstrumentation()
    instrumentation.setTracerProvider(provider)
    instrumentation.enable()
    const client = createClient({ transport: new MemoryTransport(), tracing: otelTracing() }) // default fetch: the patched global
    const h = client.command({ url: '/api/x', name: 'rename' }, { optimistic: () => {}, settle: () => {} })
    await flush()
    // The instrumentation ends its span once resource timings are in (or ~300 ms later).
    for (let i = 0; i < 50 && exporter.getFinishedSpans().filter((sp) => sp.instrumentationScope.name.includes('fetch')).length < 2; i++) {
      await new Promise((r) => setTimeout(r, 50))
    }
    const cmd: SentRequest = net.commands()[0]!
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
