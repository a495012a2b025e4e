// The built-in recorder: mints W3C ids itself and hands ended, sampled spans (already in
// OTLP/JSON form) to a sink. Unsampled actions still get ids so the traceparent is valid.
import { newSpanContext, type SpanContext } from '../ids.js'
import { type OtlpSpan, otlpAttributes, toNanos } from './otlp.js'
import type { ActionSpan, Attributes, Kind, Tracing } from './types.js'

const now = (): number => performance.timeOrigin + performance.now()

function span(
  name: string,
  kind: Kind,
  context: SpanContext,
  parentSpanId: string | undefined,
  attributes: Attributes,
  sink: (s: OtlpSpan) => void,
): ActionSpan {
  const start = toNanos(now())
  let ended = !context.sampled
  return {
    context,
    child(childName, childKind, a = {}, parent = context) {
      // Continue from `parent` only within this trace; never adopt a foreign trace's span.
      const parentId = parent.traceId === context.traceId ? parent.spanId : context.spanId
      return span(childName, childKind, newSpanContext(context.sampled, context.traceId), parentId, { ...a }, sink)
    },
    end(error, more) {
      if (ended) return
      ended = true
      Object.assign(attributes, more)
      sink({
        traceId: context.traceId,
        spanId: context.spanId,
        ...(parentSpanId ? { parentSpanId } : {}),
        name,
        kind,
        startTimeUnixNano: start,
        endTimeUnixNano: toNanos(now()),
        attributes: otlpAttributes(attributes),
        status: error === undefined ? { code: 1 } : { code: 2, message: error },
      })
    },
  }
}

export function recorderTracing(
  sampleRate: number,
  flush: () => Promise<void>,
  sink: (s: OtlpSpan) => void,
  random = Math.random,
): Tracing {
  return {
    flush,
    start(name, attributes = {}) {
      const sampled = sampleRate >= 1 || random() < sampleRate
      return span(name, 1, newSpanContext(sampled), undefined, { ...attributes }, sink)
    },
  }
}
