// The built-in recorder end to end through the plugin core: which spans, which parents, and
// the OTLP/JSON that reaches /clicktrace/v1/traces.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createClient } from '../../src/client.js'
import { parseTraceparent } from '../../src/ids.js'
import { type Answer, MemoryTransport, memoryFetch } from '../../src/testing/index.js'
import {
  encodeOtlp,
  makeTracing,
  OTLP_FLUSH_DELAY_MS,
  OTLP_MAX_BATCH,
  otlpAttributes,
  type OtlpSpan as Span,
  toNanos,
} from '../../src/trace/recorder.js'
import { flush } from '../harness.js'

interface OtlpSpan {
  traceId: string
  spanId: string
  parentSpanId?: string
  name: string
  kind: number
  startTimeUnixNano: string
  endTimeUnixNano: string
  attributes: Array<{ key: string; value: Record<string, unknown> }>
  status: { code: number; message?: string }
}
type Body = {
  resourceSpans: Array<{ resource: { attributes: unknown[] }; scopeSpans: Array<{ scope: { name: string }; spans: OtlpSpan[] }> }>
}

const spansOf = (bodies: Body[]): OtlpSpan[] => bodies.flatMap((b) => b.resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans)))
const attr = (s: OtlpSpan, k: string) => s.attributes.find((a) => a.key === k)?.value

function setup(sampleRate = 1, responder?: Parameters<typeof memoryFetch>[0]) {
  const transport = new MemoryTransport()
  const net = memoryFetch(responder)
  const client = createClient({ transport, fetch: net.fetch, sampleRate, serviceName: 'shop-web' })
  const fx = { optimistic: () => {}, settle: () => {} }
  const traces = () => net.sent.filter((s) => s.url === '/clicktrace/v1/traces')
  return { client, transport, net, fx, traces }
}

describe('built-in recorder', () => {
  beforeEach(() => vi.useFakeTimers())
  afterEach(() => vi.useRealTimers())

  it('exports the action, HTTP and notification spans in one trace, parented as sent', async () => {
    const { client, transport, fx, traces, net } = setup()
    const h = client.command({ url: '/api/products/1/rename', name: 'rename', entity: 1 }, fx)
    await flush()
    const server = { traceId: parseTraceparent(h.traceparent)!.traceId, spanId: 'abcdefabcdefabcd' }
    transport.notify({
      correlation_id: h.correlationId,
      status: 'confirmed',
      type: 'ProductRenamed',
      traceparent: `00-${server.traceId}-${server.spanId}-01`,
    })
    expect(traces()).toHaveLength(0) // batched
    vi.advanceTimersByTime(OTLP_FLUSH_DELAY_MS)
    await flush()
    const [req] = traces()
    expect(req!.headers['x-clicktrace-client']).toBe('tok-1')
    expect(req!.headers['content-type']).toBe('application/json')
    const body = req!.body as unknown as Body
    expect(body.resourceSpans[0]!.resource.attributes).toEqual([{ key: 'service.name', value: { stringValue: 'shop-web' } }])
    expect(body.resourceSpans[0]!.scopeSpans[0]!.scope.name).toBe('clicktrace-pinia')
    const spans = spansOf([body])
    const sent = parseTraceparent(h.traceparent)!
    const action = spans.find((s) => s.name === 'rename')!
    const http = spans.find((s) => s.name === 'HTTP POST')!
    const note = spans.find((s) => s.name === 'clicktrace notification')!
    const session = spans.find((s) => s.name === 'clicktrace session')! // the first click waited for it
    expect(spans).toHaveLength(4)
    expect(session).toMatchObject({ traceId: sent.traceId, parentSpanId: sent.spanId, kind: 1, status: { code: 1 } })
    for (const s of spans) expect(attr(s, 'clicktrace.correlation_id')).toEqual({ stringValue: h.correlationId })
    expect(attr(action, 'clicktrace.outcome')).toEqual({ stringValue: 'confirmed' })
    expect(net.commands()[0]!.headers.traceparent).toBe(`00-${sent.traceId}-${http.spanId}-03`)
    expect(action).toMatchObject({ traceId: sent.traceId, spanId: sent.spanId, kind: 1, status: { code: 1 } })
    expect(action.parentSpanId).toBeUndefined()
    expect(attr(action, 'clicktrace.correlation_id')).toEqual({ stringValue: h.correlationId })
    expect(attr(action, 'clicktrace.entity')).toEqual({ stringValue: '1' })
    expect(http).toMatchObject({ traceId: sent.traceId, parentSpanId: sent.spanId, kind: 3 })
    expect(attr(http, 'http.response.status_code')).toEqual({ intValue: '202' })
    expect(note).toMatchObject({ traceId: sent.traceId, parentSpanId: server.spanId, kind: 5 })
    expect(attr(note, 'clicktrace.seq')).toEqual({ intValue: '1' })
    for (const s of spans) {
      expect(s.startTimeUnixNano).toMatch(/^\d{19}$/)
      expect(BigInt(s.endTimeUnixNano) >= BigInt(s.startTimeUnixNano)).toBe(true)
    }
  })

  it("keeps the server's trace on the HTTP span when the server did not continue ours", async () => {
    const foreign = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'
    // /a: the server started its own trace; /b: it continued ours (a child of the sent span);
    // /c: it named none.
    const { client, fx, traces } = setup(
      1,
      (req): Answer => ({
        status: 202,
        headers:
          req.url === '/api/a'
            ? { 'server-timing': `trace;desc=${foreign}` }
            : req.url === '/api/b'
              ? { traceresponse: `${req.headers.traceparent!.slice(0, 36)}1234567890abcdef-01` }
              : {},
      }),
    )
    client.command({ url: '/api/a', name: 'a' }, fx)
    client.command({ url: '/api/b', name: 'b' }, fx)
    client.command({ url: '/api/c', name: 'c' }, fx)
    await flush()
    await client.flush()
    const http = spansOf(traces().map((t) => t.body as unknown as Body)).filter((s) => s.name === 'HTTP POST')
    const a = http.find((s) => attr(s, 'url.full')?.stringValue === '/api/a')!
    const b = http.find((s) => attr(s, 'url.full')?.stringValue === '/api/b')!
    expect(attr(a, 'clicktrace.server.trace_id')).toEqual({ stringValue: '4bf92f3577b34da6a3ce929d0e0e4736' })
    expect(attr(b, 'clicktrace.server.trace_id')).toBeUndefined()
    const plain = http.find((s) => attr(s, 'url.full')?.stringValue === '/api/c')!
    expect(attr(plain, 'clicktrace.server.trace_id')).toBeUndefined()
  })

  it('marks failed actions as errors and never parents on a foreign trace', async () => {
    const { client, transport, fx, traces } = setup(1, () => ({ status: 202 }))
    const h = client.command({ url: '/api/x', name: 'x' }, fx)
    await flush()
    transport.notify({
      correlation_id: h.correlationId,
      status: 'rejected',
      error: { code: 'name_taken', message: 'no' },
      traceparent: `00-${'1'.repeat(32)}-${'2'.repeat(16)}-01`,
    })
    vi.advanceTimersByTime(OTLP_FLUSH_DELAY_MS)
    const spans = spansOf(traces().map((t) => t.body as unknown as Body))
    const sent = parseTraceparent(h.traceparent)!
    expect(spans.find((s) => s.name === 'x')!.status).toEqual({ code: 2, message: 'name_taken' })
    expect(spans.find((s) => s.name === 'clicktrace notification')).toMatchObject({ traceId: sent.traceId, parentSpanId: sent.spanId })
  })

  it('with sampleRate 0 sends an unsampled traceparent and exports nothing', async () => {
    const { client, transport, fx, traces } = setup(0)
    const h = client.command({ url: '/api/x' }, fx)
    expect(h.traceparent).toMatch(/-02$/)
    await flush()
    transport.notify({ correlation_id: h.correlationId, status: 'confirmed' })
    vi.advanceTimersByTime(10 * OTLP_FLUSH_DELAY_MS)
    expect(traces()).toHaveLength(0)
  })

  it('samples by the given rate', () => {
    const rolls = [0.1, 0.5, 0.9]
    const t = makeTracing(
      { transport: new MemoryTransport(), sampleRate: 0.5 },
      memoryFetch().fetch,
      () => undefined,
      () => rolls.shift()!,
    )
    expect([t.start('a'), t.start('b'), t.start('c')].map((s) => s.context.sampled)).toEqual([true, false, false])
  })
})

describe('OTLP exporter', () => {
  beforeEach(() => vi.useFakeTimers())
  afterEach(() => vi.useRealTimers())

  const span = (i: number): Span => ({
    traceId: 'a'.repeat(32),
    spanId: i.toString(16).padStart(16, '0'),
    name: `s${i}`,
    kind: 1,
    startTimeUnixNano: '1764000000000500000',
    endTimeUnixNano: '1764000000001250000',
    attributes: [],
    status: { code: 1 },
  })

  // The recorder alone, posting to `/t` through `fetch`.
  const recorder = (fetch: typeof globalThis.fetch, token?: string, onError?: (e: unknown) => void) =>
    makeTracing(
      { transport: new MemoryTransport(), tracesUrl: '/t', serviceName: 's', ...(onError ? { onError } : {}) },
      fetch,
      () => token,
    )

  it('posts a full batch at once with keepalive, the rest after the delay', async () => {
    const calls: RequestInit[] = []
    const fetch = (async (_u: RequestInfo | URL, init?: RequestInit) => {
      calls.push(init!)
      return new Response('{}')
    }) as typeof globalThis.fetch
    const t = recorder(fetch, 'k')
    for (let i = 1; i <= OTLP_MAX_BATCH + 1; i++) t.start(`s${i}`).end()
    expect(calls).toHaveLength(1)
    expect(calls[0]).toMatchObject({ method: 'POST', keepalive: true, headers: { 'x-clicktrace-client': 'k' } })
    const body = JSON.parse(calls[0]!.body as string) as Body
    expect(spansOf([body])).toHaveLength(OTLP_MAX_BATCH)
    expect(body.resourceSpans[0]!.resource.attributes).toEqual([{ key: 'service.name', value: { stringValue: 's' } }])
    vi.advanceTimersByTime(OTLP_FLUSH_DELAY_MS)
    expect(calls).toHaveLength(2)
    expect(calls[1]!.headers).toEqual({ 'content-type': 'application/json', 'x-clicktrace-client': 'k' })
    t.flush()
    expect(calls).toHaveLength(2) // nothing queued, nothing sent
  })

  it('sends no token header before there is a token, and nothing at all with tracesUrl false', async () => {
    const calls: RequestInit[] = []
    const fetch = (async (_u: RequestInfo | URL, init?: RequestInit) => {
      calls.push(init!)
      return new Response('{}')
    }) as typeof globalThis.fetch
    const t = recorder(fetch)
    t.start('a').end()
    await t.flush()
    expect(calls[0]!.headers).toEqual({ 'content-type': 'application/json' })
    const off = makeTracing({ transport: new MemoryTransport(), tracesUrl: false }, fetch, () => 'k')
    off.start('b').end()
    await off.flush()
    vi.advanceTimersByTime(10 * OTLP_FLUSH_DELAY_MS)
    expect(calls).toHaveLength(1)
  })

  it('flushes when the page is hidden and reports failures', async () => {
    const errors: unknown[] = []
    const fetch = vi.fn(async () => new Response('{}', { status: 429 }))
    const t = recorder(fetch as unknown as typeof globalThis.fetch, undefined, (x) => errors.push(x))
    t.start('a').end()
    Object.defineProperty(document, 'visibilityState', { value: 'hidden', configurable: true })
    document.dispatchEvent(new Event('visibilitychange'))
    Object.defineProperty(document, 'visibilityState', { value: 'visible', configurable: true })
    expect(fetch).toHaveBeenCalledOnce()
    await flush()
    expect(errors).toEqual([new Error('trace export: HTTP 429')])
  })

  it('encodes proto3 JSON: int64 nanoseconds as strings, typed attributes, one resource and scope', () => {
    expect(otlpAttributes({ s: 'x', i: 3, d: 0.5, b: false, u: undefined })).toEqual([
      { key: 's', value: { stringValue: 'x' } },
      { key: 'i', value: { intValue: '3' } },
      { key: 'd', value: { doubleValue: 0.5 } },
      { key: 'b', value: { boolValue: false } },
    ])
    expect(encodeOtlp([span(1)], 'svc', '9')).toEqual({
      resourceSpans: [
        {
          resource: { attributes: [{ key: 'service.name', value: { stringValue: 'svc' } }] },
          scopeSpans: [{ scope: { name: 'clicktrace-pinia', version: '9' }, spans: [span(1)] }],
        },
      ],
    })
    expect(toNanos(1.000001)).toBe('1000000')
    expect(toNanos(1_764_000_000_000.123)).toBe('1764000000000123000')
  })
})
