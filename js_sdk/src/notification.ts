// Validation of untrusted notifications: anything malformed gives undefined, never a throw.
import { parseCorrelationId, parseTraceparent, type SpanContext } from './ids.js'
import type { CommandError } from './types.js'

export type NotificationStatus = 'confirmed' | 'rejected' | 'progress' | 'resync'
const STATUSES: ReadonlySet<string> = new Set<NotificationStatus>(['confirmed', 'rejected', 'progress', 'resync'])
/** Error texts are shown to users; cap what an untrusted peer can put on screen. */
export const MAX_ERROR_TEXT = 500

export interface Notification {
  seq: number
  status: NotificationStatus
  correlationId: string | undefined
  type: string | undefined
  data: unknown
  error: CommandError | undefined
  trace: SpanContext | undefined
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v)

const text = (v: unknown, fallback: string): string =>
  typeof v === 'string' ? v.slice(0, MAX_ERROR_TEXT) : fallback

export function parseError(v: unknown, fallbackCode: string): CommandError {
  const e = isObject(v) ? v : {}
  return { code: text(e.code, fallbackCode), message: text(e.message, fallbackCode) }
}

export function parseNotification(raw: unknown): Notification | undefined {
  if (!isObject(raw)) return undefined
  const { seq, status } = raw
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0) return undefined
  if (typeof status !== 'string' || !STATUSES.has(status)) return undefined
  const correlationId = parseCorrelationId(raw.correlation_id)
  if (status !== 'resync' && correlationId === undefined) return undefined
  return {
    seq,
    status: status as NotificationStatus,
    correlationId,
    type: typeof raw.type === 'string' ? raw.type : undefined,
    data: raw.data,
    error: status === 'rejected' ? parseError(raw.error, 'rejected') : undefined,
    trace: parseTraceparent(raw.traceparent),
  }
}
