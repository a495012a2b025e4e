// Identifiers minted in the browser at the click: the ULID correlation id and W3C trace ids.
// The ULID encoder is ours (the `ulid` package costs ~0.8 KB gzip of the 5 KB budget); tests
// cross-check it against that package.
import { FLAG_RANDOM, FLAG_SAMPLED } from './protocol.js'

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'

// The alphabet above, first character at most 7 (48 bits of time). Pure: droppable when unused.
const ULID_RE = /* @__PURE__ */ new RegExp(`^[0-7][${CROCKFORD}]{25}$`)
// W3C Trace Context: version 00, 32 hex trace id, 16 hex span id, 2 hex flags; all-zero ids invalid.
const TRACEPARENT_RE = /^00-(?!0{32})([\da-f]{32})-(?!0{16})([\da-f]{16})-([\da-f]{2})$/

export interface SpanContext {
  traceId: string
  spanId: string
  sampled: boolean
}

/** A ULID: 48-bit millisecond time, 80 random bits (crypto.getRandomValues), Crockford base32. */
export function newCorrelationId(now = Date.now()): string {
  let id = ''
  for (let i = 0; i < 10; i++, now = Math.floor(now / 32)) id = CROCKFORD[now % 32]! + id
  // 16 bytes masked to 5 bits each: 80 uniform random bits.
  for (const b of crypto.getRandomValues(new Uint8Array(16))) id += CROCKFORD[b & 31]!
  return id
}

/** Normalises a received correlation id to uppercase; anything that is not a ULID gives undefined. */
export function parseCorrelationId(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined
  const up = value.toUpperCase()
  return ULID_RE.test(up) ? up : undefined
}

/** `bytes` random bytes as lowercase hex; never all zeros (an invalid W3C id). */
export function randomHex(bytes: number): string {
  let hex = ''
  for (const b of crypto.getRandomValues(new Uint8Array(bytes))) hex += (b | 256).toString(16).slice(1)
  return /[^0]/.test(hex) ? hex : randomHex(bytes)
}

export const newSpanContext = (sampled: boolean, traceId = randomHex(16)): SpanContext => ({
  traceId,
  spanId: randomHex(8),
  sampled,
})

/** Trace-flags `03` / `02`: the trace ids are random (Level 2's random-trace-id flag), sampled or not. */
export const formatTraceparent = (c: SpanContext): string =>
  `00-${c.traceId}-${c.spanId}-0${c.sampled ? FLAG_RANDOM | FLAG_SAMPLED : FLAG_RANDOM}` // one hex digit: both flags < 16

/** Never throws: a malformed value gives undefined and the caller starts fresh. */
export function parseTraceparent(value: unknown): SpanContext | undefined {
  if (typeof value !== 'string') return undefined
  const m = TRACEPARENT_RE.exec(value.trim())
  return m ? { traceId: m[1]!, spanId: m[2]!, sampled: (parseInt(m[3]!, 16) & FLAG_SAMPLED) > 0 } : undefined
}
