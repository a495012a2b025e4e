// The journal route (GET /clicktrace/journal/{id}, contract 2) as the waterfall reads it, and
// the tab's token, taken from the session answers through the plugin's `fetch` option.
import { reactive } from 'vue'

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
  state: 'confirmed' | 'rejected' | 'dead_lettered' | 'refused' | 'lost' | 'stuck' | 'unknown'
    | 'in_flight' | 'trace_broken' | 'sampled_out'
  stage: string
  outcome: string | null
  ms: number | null
  /** What follows the state: `verdictLine` joins them. */
  text: string
  tab: { outcome: string | null, ms: number | null } | null
  code?: string
}

const STATE_WORDS: Record<string, string> = {
  dead_lettered: 'dead-lettered', in_flight: 'in flight', trace_broken: 'trace broken',
  sampled_out: 'sampled out',
}

/** The verdict as the CLI prints it: `lost at stored: no next stage for 31250 ms; …`. */
export function verdictLine(v: Verdict): string {
  return `${STATE_WORDS[v.state] ?? v.state} ${v.text}`.trimEnd()
}

export interface JournalAnswer {
  correlation_id: string
  client_id: string | null
  trace_ids: string[]
  verdict: Verdict
  stages: Stage[]
}

const tab = reactive({ token: undefined as string | undefined })

/** `fetch` for createClicktrace: the plugin's own, remembering the token of each session. */
export const sessionFetch: typeof fetch = async (input, init) => {
  const reply = await fetch(input, init)
  const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url
  if (reply.ok && url.includes('/clicktrace/session')) {
    try {
      const body = (await reply.clone().json()) as { token?: unknown }
      if (typeof body.token === 'string') tab.token = body.token
    } catch { /* not JSON: the plugin reports it */ }
  }
  return reply
}

function isAnswer(value: unknown): value is JournalAnswer {
  if (typeof value !== 'object' || value === null) return false
  const v = value as Partial<JournalAnswer>
  return typeof v.correlation_id === 'string' && Array.isArray(v.stages)
    && typeof v.verdict === 'object' && v.verdict !== null && Array.isArray(v.trace_ids)
}

/** The journal of one click, or undefined when there is none (yet) or it is not ours. */
export async function readJournal(correlationId: string): Promise<JournalAnswer | undefined> {
  if (!tab.token) return undefined
  const reply = await fetch(`/clicktrace/journal/${encodeURIComponent(correlationId)}`, {
    headers: { 'x-clicktrace-client': tab.token },
  })
  if (!reply.ok) return undefined
  const body: unknown = await reply.json()
  return isAnswer(body) ? body : undefined
}

const BROWSER = new Set(['clicked', 'session', 'http', 'received', 'settled'])
// The server's stages in the order a click goes through them: where a click got furthest is a
// matter of this order, not of clocks (the relay, say, records `relayed` once the broker
// confirmed, after `published`, or even after `delivered`).
const PIPELINE = ['refused', 'accepted', 'stored', 'relayed', 'published', 'delivered', 'retried',
  'dead_lettered', 'acked', 'step', 'notified', 'pushed', 'replayed', 'resync']
const rank = (s: Stage) => PIPELINE.indexOf(s.stage)

/** Where the click stopped, in a person's words: the stage the story's faults end at. */
export function diagnosis(answer: JournalAnswer, status: string): string {
  const stages = answer.stages
  const has = (name: string) => stages.some((s) => s.stage === name)
  if (has('dead_lettered')) {
    const attempts = Math.max(0, ...stages.map((s) => s.attempt ?? 0))
    return `dead-lettered after ${attempts} attempt${attempts === 1 ? '' : 's'}`
  }
  if (answer.verdict.state === 'trace_broken') {
    const at = answer.verdict.stage === 'delivered' ? 'consume' : answer.verdict.stage
    return `trace broken at ${at}`
  }
  if (has('stored') && !has('relayed') && !has('published')) {
    // Once the tab gave up, nothing that comes later changes what the user got.
    return answer.verdict.state === 'in_flight' && !answer.verdict.tab
      ? 'accepted and stored, not yet published' : 'accepted and stored but never published'
  }
  const settled = stages.filter((s) => s.stage === 'settled').pop()
  const server = stages.filter((s) => !BROWSER.has(s.stage))
  const furthest = server.reduce<Stage | undefined>(
    (best, s) => (best === undefined || rank(s) >= rank(best) ? s : best), undefined)
  const outcome = settled ? (settled.outcome ?? status) : undefined
  if (outcome === 'timed_out' && settled && furthest) {
    // The tab timed out, yet the server sent an outcome: it came after the deadline (no
    // clocks compared: browser and server clocks disagree, the journal corrects for it).
    return has('notified') ? 'timed out: the projection answered after the deadline'
      : `timed out: stuck at ${furthest.stage}`
  }
  const state = answer.verdict.state
  if (state === 'stuck' || state === 'lost' || state === 'unknown') {
    return `${state} at ${furthest?.stage ?? answer.verdict.stage}`
  }
  if (outcome) return `settled: ${outcome}`
  return furthest ? `in flight at ${furthest.stage}` : 'waiting for the server'
}
