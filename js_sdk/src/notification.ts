// Validation of untrusted notifications: anything malformed gives undefined, never a throw.
import { parseCorrelationId, parseTraceparent, type SpanContext } from './ids.js'
import { MAX_EPOCH_LENGTH, MAX_ERROR_TEXT } from './protocol.js'
import type { CommandError } from './types.js'

export type NotificationStatus = 'confirmed' | 'rejected' | 'progress' | 'resync'
const STATUSES: readonly unknown[] = ['confirmed', 'rejected', 'progress', 'resync'] satisfies NotificationStatus[]

export interface Notification {
  seq: number
  /** The replay epoch `seq` belongs to; undefined from a server that predates epochs. */
  epoch: string | undefined
  status: NotificationStatus
  correlationId: string | undefined
  type: string | undefined
  data: unknown
  error: CommandError | undefined
  trace: SpanContext | undefined
}

type Loose = Record<string, unknown> | null | undefined

const text = (v: unknown, fallback: string): string => (typeof v === 'string' ? v.slice(0, MAX_ERROR_TEXT) : fallback)

export function parseError(v: unknown, fallbackCode: string): CommandError {
  const e = (typeof v === 'object' ? v : undefined) as Loose
  return { code: text(e?.code, fallbackCode), message: text(e?.message, fallbackCode) }
}

export function parseNotification(raw: unknown): Notification | undefined {
  const n = (typeof raw === 'object' ? raw : undefined) as Loose
  const seq = n?.seq as number
  const status = n?.status as NotificationStatus
  if (!Number.isSafeInteger(seq) || seq < 0 || !STATUSES.includes(status)) return undefined
  const correlationId = parseCorrelationId(n!.correlation_id)
  if (status !== 'resync' && !correlationId) return undefined
  const epoch = n!.epoch
  if (epoch !== undefined && (typeof epoch !== 'string' || epoch.length > MAX_EPOCH_LENGTH)) return undefined
  return {
    seq,
    epoch,
    status,
    correlationId,
    type: typeof n!.type === 'string' ? n!.type : undefined,
    data: n!.data,
    error: status === 'rejected' ? parseError(n!.error, 'rejected') : undefined,
    trace: parseTraceparent(n!.traceparent),
  }
}
