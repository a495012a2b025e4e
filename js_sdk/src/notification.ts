// The notifications a client receives (protocol "Notification"): validation of untrusted
// frames (anything malformed gives undefined, never a throw), and where the client resumes
// from: the last seq seen and the replay epoch it belongs to (contract 6). A frame of another
// epoch than ours means the server's numbering started over (a restarted replay buffer, a
// flushed store): adopt it and forget the seqs seen, as after a resync; without `epoch` (an
// older server) seqs alone decide.
import { parseCorrelationId, parseTraceparent, type SpanContext } from './ids.js'
import { MAX_EPOCH_LENGTH, MAX_ERROR_TEXT, REJECTED } from './protocol.js'
import type { Hello } from './transport/types.js'
import type { CommandError } from './types.js'

export type NotificationStatus = 'confirmed' | 'rejected' | 'progress' | 'resync' | 'update'
const STATUSES: readonly unknown[] = ['confirmed', 'rejected', 'progress', 'resync', 'update'] satisfies NotificationStatus[]

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
  /** Orders changes to `key` (live updates): an older one never overwrites a newer. */
  version: number | undefined
  key: string | undefined
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
    error: status === 'rejected' ? parseError(n!.error, REJECTED) : undefined,
    trace: parseTraceparent(n!.traceparent),
    version: Number.isSafeInteger(n!.version) ? (n!.version as number) : undefined,
    key: typeof n!.key === 'string' ? n!.key : undefined,
  }
}

export interface Decision {
  /** Missed notifications cannot be replayed: run the resync hooks. */
  resync: boolean
  /** A new notification to dispatch (not a resync frame, not seen before). */
  deliver: boolean
}

export interface Resume {
  hello(token: string): Hello
  /** A new client (new session): its seq and epoch start over. */
  reset(): void
  take(n: Notification): Decision
}

export function resume(): Resume {
  let seq = 0
  let epoch: string | undefined
  return {
    hello: (token) => ({ token, last_seq: seq, epoch }), // an undefined epoch is left out of the JSON
    reset() {
      seq = 0
      epoch = undefined
    },
    take(n) {
      // The first epoch a client hears is adopted as is; a change of epoch loses the old numbering.
      const renumbered = n.epoch !== undefined && epoch !== undefined && n.epoch !== epoch
      epoch = n.epoch ?? epoch
      if (renumbered) seq = 0
      const resync = n.status === 'resync' // the server names the seq to continue from
      const deliver = !resync && n.seq > seq // not replayed twice across a reconnect
      if (resync || deliver) seq = n.seq
      return { resync: resync || renumbered, deliver }
    },
  }
}
