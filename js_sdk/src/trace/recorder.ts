// The built-in recorder: mints W3C ids itself and hands ended, sampled spans to a sink
// (the OTLP/JSON exporter). Unsampled actions still get ids so the traceparent is valid.
import { newSpanContext, type SpanContext } from '../ids.js'
import type { RecordedSpan } from './otlp.js'
import type { ActionSpan, Attributes, Kind, Tracing } from './types.js'

const now = (): number => performance.timeOrigin + performance.now()

function span(
  name: string,
  kind: Kind,
  context: SpanContext,
  parentSpanId: string | undefined,
  attributes: Attributes,
  sink: (s: RecordedSpan) => void,
): ActionSpan {
  const startMs = now()
  let ended = false
  return {
    context,
    set(a) {
      Object.assign(attributes, a)
    },
    child(childName, childKind, a = {}, parent = context) {
      const ctx = newSpanContext(context.sampled, context.traceId)
      // Continue from `parent` only within this trace; never adopt a foreign trace's span.
      const parentId = parent.traceId === context.traceId ? parent.spanId : context.spanId
      return span(childName, childKind, ctx, parentId, { ...a }, sink)
    },
    end(error) {
      if (ended || !context.sampled) return
      ended = true
      sink({
        traceId: context.traceId, spanId: context.spanId, name, kind, startMs, endMs: now(), attributes,
        ...(parentSpanId ? { parentSpanId } : {}),
        ...(error === undefined ? {} : { error }),
      })
    },
  }
}

export function recorderTracing(sampleRate: number, sink: (s: RecordedSpan) => void, random = Math.random): Tracing {
  return {
    start(name, attributes = {}) {
      const sampled = sampleRate >= 1 || random() < sampleRate
      return span(name, 1, newSpanContext(sampled), undefined, { ...attributes }, sink)
    },
  }
}
