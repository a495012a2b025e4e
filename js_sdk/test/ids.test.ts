import fc from 'fast-check'
import { decodeTime, isValid } from 'ulid'
import { describe, expect, it } from 'vitest'
import { formatTraceparent, newCorrelationId, newSpanContext, parseCorrelationId, parseTraceparent, randomHex } from '../src/ids.js'

describe('correlation ids', () => {
  it('are ULIDs the ulid package accepts, with the time in front', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 48 - 1 }), (ms) => {
        const id = newCorrelationId(ms)
        expect(id).toMatch(/^[0-7][0-9A-HJKMNP-TV-Z]{25}$/)
        expect(isValid(id)).toBe(true)
        expect(decodeTime(id)).toBe(ms)
      }),
    )
  })

  it('differ between calls in the same millisecond', () => {
    const ids = new Set(Array.from({ length: 1000 }, () => newCorrelationId(1_764_000_000_000)))
    expect(ids.size).toBe(1000)
  })

  it('are normalised to uppercase when received, and anything else is refused', () => {
    const id = newCorrelationId()
    expect(parseCorrelationId(id.toLowerCase())).toBe(id)
    for (const bad of ['', 'x', `${id}0`, id.slice(1), `8${id.slice(1)}`, 'I'.repeat(26), 42, null, undefined, {}]) {
      expect(parseCorrelationId(bad)).toBeUndefined()
    }
  })
})

describe('traceparent', () => {
  it('round-trips minted contexts, sampled or not, with the random-trace-id flag set', () => {
    for (const sampled of [true, false]) {
      const c = newSpanContext(sampled)
      expect(formatTraceparent(c)).toMatch(new RegExp(`^00-${c.traceId}-${c.spanId}-0${sampled ? 3 : 2}$`))
      expect(parseTraceparent(formatTraceparent(c))).toEqual(c)
    }
  })

  it('keeps the trace id for a child and mints a new span id', () => {
    const parent = newSpanContext(true)
    const child = newSpanContext(true, parent.traceId)
    expect(child.traceId).toBe(parent.traceId)
    expect(child.spanId).not.toBe(parent.spanId)
  })

  it('rejects malformed values without throwing', () => {
    const t = '0af7651916cd43dd8448eb211c80319c'
    const s = 'b7ad6b7169203331'
    expect(parseTraceparent(`00-${t}-${s}-01`)).toEqual({ traceId: t, spanId: s, sampled: true })
    expect(parseTraceparent(`00-${t}-${s}-03`)?.sampled).toBe(true)
    for (const bad of [
      `00-${'0'.repeat(32)}-${s}-01`,
      `00-${t}-${'0'.repeat(16)}-01`,
      `01-${t}-${s}-01`,
      `00-${t.toUpperCase()}-${s}-01`,
      `00-${t}-${s}`,
      `00-${t}-${s}-01-extra`,
      `00-${t.slice(1)}-${s}-01`,
      '',
      7,
      undefined,
    ]) {
      expect(parseTraceparent(bad)).toBeUndefined()
    }
    fc.assert(
      fc.property(fc.anything(), (v) => {
        parseTraceparent(v)
      }),
    )
  })

  it('random hex has the asked length and is never all zeros', () => {
    expect(randomHex(8)).toMatch(/^[0-9a-f]{16}$/)
    expect(randomHex(16)).toMatch(/^[0-9a-f]{32}$/)
  })
})
