// clicktrace-pinia/journal: a tab reads its own click's journal (GET /clicktrace/journal/{id},
// docs/observe.md), so an app can show its user "where did my click go". The route answers only
// the tab that owns the id: the request carries the session token the plugin obtained. Kept out
// of the main entry (bundle budget); the waterfall (clicktrace-pinia/waterfall) renders the answer.
import { CLIENT_HEADER } from './protocol.js'
import { latestSession } from './session.js'

/** One stage of a click, as the journal route gives it. */
export interface Stage {
  stage: string
  at: number
  since_start_ms: number
  since_previous_ms: number
  trace_id: string | null
  span_id: string | null
  process: string | null
  attempt: number | null
  outcome: string | null
  detail: string | null
  duration_ms: number | null
}

/** The server's verdict (docs/observe.md "Verdicts"); the tab's own view is `tab`, beside it. */
export interface Verdict {
  state: string
  stage: string
  outcome: string | null
  ms: number | null
  /** What follows the state: `verdictLine` joins them. */
  text: string
  tab: { outcome: string | null; ms: number | null } | null
  code?: string
}

/** The journal route's answer; the console's adds `line`, `trace_url` and `resendable`. */
export interface JournalAnswer {
  correlation_id: string
  client_id: string | null
  trace_ids: string[]
  verdict: Verdict
  stages: Stage[]
  /** The verdict in words, "where it stopped" (the console's answer). */
  line?: string
  /** A link to the click's trace in a trace UI, when one is configured (the console's answer). */
  trace_url?: string | null
  resendable?: boolean
}

export interface ReadJournalOptions {
  /** The journal route's prefix. Default `/clicktrace/journal`. */
  url?: string
  /** Injected fetch (tests); default `globalThis.fetch`. */
  fetch?: typeof fetch
}

/** A JSON value shaped like a journal answer (untrusted input: checked, never trusted). */
export function isJournalAnswer(value: unknown): value is JournalAnswer {
  if (typeof value !== 'object' || value === null) return false
  const v = value as Partial<JournalAnswer>
  return (
    typeof v.correlation_id === 'string' &&
    Array.isArray(v.stages) &&
    typeof v.verdict === 'object' &&
    v.verdict !== null &&
    typeof v.verdict.state === 'string' &&
    Array.isArray(v.trace_ids)
  )
}

/**
 * The journal of one of this tab's clicks, with the session of the page's clicktrace plugin;
 * undefined when the tab has no session yet, when the id is not this tab's, or when the journal
 * holds nothing (yet) for it. Rejects only when the network fails.
 */
export async function readJournal(correlationId: string, options: ReadJournalOptions = {}): Promise<JournalAnswer | undefined> {
  const session = latestSession()
  if (!session) return undefined
  const fetcher = options.fetch ?? globalThis.fetch
  const reply = await fetcher(`${options.url ?? '/clicktrace/journal'}/${encodeURIComponent(correlationId)}`, {
    headers: { [CLIENT_HEADER]: session.token },
  })
  if (!reply.ok) return undefined
  const body: unknown = await reply.json().catch(() => undefined)
  return isJournalAnswer(body) ? body : undefined
}
