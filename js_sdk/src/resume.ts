// Where the client resumes from: the last seq seen and the replay epoch it belongs to
// (protocol "Notification", contract 6). A frame of another epoch than ours means the server's
// numbering started over (a restarted replay buffer, a flushed store): adopt it and forget
// the seqs seen, as after a resync; without `epoch` (an older server) seqs alone decide.
import type { Notification } from './notification.js'
import type { Hello } from './transport/types.js'

export interface Verdict {
  /** Missed notifications cannot be replayed: run the resync hooks. */
  resync: boolean
  /** A new notification to dispatch (not a resync frame, not seen before). */
  deliver: boolean
}

export interface Resume {
  hello(token: string): Hello
  /** A new client (new session): its seq and epoch start over. */
  reset(): void
  take(n: Notification): Verdict
}

export function resume(): Resume {
  let seq = 0
  let epoch: string | undefined
  return {
    hello: (token) => (epoch === undefined ? { token, last_seq: seq } : { token, last_seq: seq, epoch }),
    reset() {
      seq = 0
      epoch = undefined
    },
    take(n) {
      // The first epoch a client hears is adopted as is; a change of epoch loses the old numbering.
      const renumbered = n.epoch !== undefined && epoch !== undefined && n.epoch !== epoch
      if (n.epoch !== undefined) epoch = n.epoch
      if (renumbered) seq = 0
      if (n.status === 'resync') {
        seq = n.seq
        return { resync: true, deliver: false }
      }
      if (n.seq <= seq) return { resync: renumbered, deliver: false } // replayed twice across a reconnect
      seq = n.seq
      return { resync: renumbered, deliver: true }
    },
  }
}
