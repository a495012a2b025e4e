// clicktrace-pinia/waterfall: one click's journal drawn as a waterfall, framework-free: every
// stage on one time axis, a lane per process, durations, the verdict line and where the click
// stopped in words, the trace id linked to a trace UI. The demo's page and the operator console
// both render with it. DOM calls only (text, never HTML, from the journal: its details are
// untrusted), and positions through the CSSOM, so it works under a CSP without 'unsafe-inline'.
import type { JournalAnswer, Stage, Verdict } from './journal.js'

export type { JournalAnswer, Stage, Verdict } from './journal.js'

export interface WaterfallOptions {
  /** A heading: the action's name. */
  title?: string
  /** The tab's own status of the click (pending, confirmed, ...), when the tab rendering it sent it. */
  status?: string
  /** Shown while there is no answer yet; else the answer's id. */
  correlationId?: string
  /** The trace id when the journal holds none yet (the tab's traceparent). */
  traceId?: string
  /** A trace UI's address with `{trace_id}` in it; the answer's `trace_url` wins. */
  traceUrl?: string | null
  /** Add the waterfall's stylesheet to the document (default true); false when the page's own CSS has `WATERFALL_CSS`. */
  styles?: boolean
}

const LABELS: Record<string, string> = {
  clicked: 'click',
  session: 'session set-up',
  http: 'HTTP',
  dead_lettered: 'dead-lettered',
  resent: 'sent again',
  pushed: 'pushed to sockets',
  received: 'delivered to the tab',
}
const STATE_WORDS: Record<string, string> = {
  dead_lettered: 'dead-lettered',
  in_flight: 'in flight',
  trace_broken: 'trace broken',
  sampled_out: 'sampled out',
  timed_out: 'timed out',
}
const ATTEMPTED = new Set(['delivered', 'retried', 'dead_lettered', 'resent'])
// Browser stages are recorded at their span's start (HTTP, session set-up) or end; server
// stages at the end of what their duration measures (accept→publish, handler time, ...).
const STARTS = new Set(['http', 'session'])
const BROWSER = new Set(['clicked', 'session', 'http', 'received', 'settled'])
// The server's stages in the order a click goes through them: where a click got furthest is a
// matter of this order, not of clocks (the relay, say, records `relayed` once the broker
// confirmed, after `published`, or even after `delivered`).
const PIPELINE = [
  'refused',
  'accepted',
  'stored',
  'relayed',
  'published',
  'delivered',
  'retried',
  'dead_lettered',
  'resent',
  'acked',
  'step',
  'notified',
  'pushed',
  'replayed',
  'resync',
]
const rank = (s: Stage): number => PIPELINE.indexOf(s.stage)

/** The verdict as the CLI prints it: `lost at stored: no next stage for 31250 ms; …`. */
export function verdictLine(v: Verdict): string {
  return `${STATE_WORDS[v.state] ?? v.state} ${v.text}`.trimEnd()
}

/** A stage's name in words, with its attempt where there are several. */
export function stageLabel(s: Stage): string {
  const name = LABELS[s.stage] ?? s.stage
  return s.attempt && ATTEMPTED.has(s.stage) ? `${name} (attempt ${s.attempt})` : name
}

/** Where the click stopped, in a person's words; `status` is the tab's own, when it has one. */
export function diagnosis(answer: JournalAnswer, status?: string): string {
  const stages = answer.stages
  const has = (name: string): boolean => stages.some((s) => s.stage === name)
  const last = (name: string): number => stages.map((s) => s.stage).lastIndexOf(name)
  // A dead letter an operator sent again goes on: what follows the resend tells.
  if (last('dead_lettered') > last('resent')) {
    const attempts = Math.max(0, ...stages.map((s) => s.attempt ?? 0))
    return `dead-lettered after ${attempts} attempt${attempts === 1 ? '' : 's'}`
  }
  if (answer.verdict.state === 'trace_broken') {
    return `trace broken at ${answer.verdict.stage === 'delivered' ? 'consume' : answer.verdict.stage}`
  }
  if (has('stored') && !has('relayed') && !has('published')) {
    // Once the tab gave up, nothing that comes later changes what the user got.
    return answer.verdict.state === 'in_flight' && !answer.verdict.tab
      ? 'accepted and stored, not yet published'
      : 'accepted and stored but never published'
  }
  const settled = stages.filter((s) => s.stage === 'settled').pop()
  // After a resend, the furthest stage is the new attempt's (the resend itself until it goes on).
  const resent = last('resent')
  const furthest = stages
    .slice(resent < 0 ? 0 : stages.length > resent + 1 ? resent + 1 : resent)
    .filter((s) => !BROWSER.has(s.stage))
    .reduce<Stage | undefined>((best, s) => (best === undefined || rank(s) >= rank(best) ? s : best), undefined)
  const outcome = settled ? (settled.outcome ?? status) : undefined
  if (outcome === 'timed_out' && furthest) {
    // The tab timed out, yet the server sent an outcome: it came after the deadline (no
    // clocks compared: browser and server clocks disagree, the journal corrects for it).
    return has('notified') ? 'timed out: the projection answered after the deadline' : `timed out: stuck at ${furthest.stage}`
  }
  const state = answer.verdict.state
  if (state === 'stuck' || state === 'lost' || state === 'unknown') return `${state} at ${furthest?.stage ?? answer.verdict.stage}`
  if (outcome) return `settled: ${outcome}`
  return furthest ? `in flight at ${furthest.stage}` : 'waiting for the server'
}

/** The waterfall's rules, for a page that ships its own CSS (and passes `styles: false`). */
export const WATERFALL_CSS = `.ct-waterfall{margin:1rem 0 0;padding:.6rem .8rem;border-radius:.5rem;background:#f7f7f7;color:#222}
.ct-waterfall.rejected,.ct-waterfall.timed_out,.ct-waterfall.dead_lettered,.ct-waterfall.lost,.ct-waterfall.refused{background:#fdf1f1}
.ct-waterfall.confirmed{background:#f0faf2}
.ct-waterfall header{display:flex;gap:.8rem;align-items:baseline;flex-wrap:wrap}
.ct-waterfall .ct-verdict{color:#444}
.ct-waterfall .ct-where{margin:.2rem 0;font-weight:600}
.ct-waterfall .ct-ids{font-size:.8rem;margin:.2rem 0}
.ct-waterfall .ct-ids button{font-size:.7rem;margin-right:.6rem}
.ct-waterfall .ct-lane{margin:.4rem 0 0}
.ct-waterfall .ct-lane h4{margin:0;font-size:.75rem;color:#555;font-weight:600}
.ct-waterfall ol{list-style:none;padding:0;margin:0;font-size:.8rem}
.ct-waterfall li{display:grid;grid-template-columns:11rem 1fr 8rem 12rem;gap:.4rem;align-items:center}
.ct-waterfall .ct-axis{position:relative;height:.7rem;background:#eaeaea;border-radius:.2rem}
.ct-waterfall .ct-bar{position:absolute;top:0;bottom:0;min-width:3px;background:#4a7bd0;border-radius:.2rem}
.ct-waterfall li.dead_lettered .ct-bar,.ct-waterfall li.retried .ct-bar,.ct-waterfall li.rejected .ct-bar,.ct-waterfall li.timed_out .ct-bar{background:#c94a4a}
.ct-waterfall li.settled .ct-bar{background:#9ab4e0}
.ct-waterfall .ct-detail{color:#666;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
`

const adopted = new WeakSet<Document>()
function adoptStyles(doc: Document): void {
  // A constructed stylesheet is CSSOM: allowed under style-src 'self', unlike a <style> element.
  if (adopted.has(doc) || typeof CSSStyleSheet === 'undefined' || !('adoptedStyleSheets' in doc)) return
  const sheet = new CSSStyleSheet()
  sheet.replaceSync(WATERFALL_CSS)
  doc.adoptedStyleSheets = [...doc.adoptedStyleSheets, sheet]
  adopted.add(doc)
}

type Attrs = Record<string, string | undefined>

function h(doc: Document, tag: string, attrs: Attrs = {}, ...children: (Node | string)[]): HTMLElement {
  const el = doc.createElement(tag)
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined) el.setAttribute(k, v)
  el.append(...children)
  return el
}

const ms = (value: number | null): string => (value === null ? '' : `${Math.round(value)} ms`)

/** The process a stage ran in: the journal names the node that ingested a browser stage; the tab did it. */
export const stageProcess = (s: Stage): string => (BROWSER.has(s.stage) ? 'browser' : (s.process ?? 'unknown'))

function copyButton(doc: Document, text: string, what: string): HTMLElement {
  const button = h(doc, 'button', { type: 'button', 'aria-label': `copy the ${what}` }, 'copy')
  button.addEventListener('click', () => void doc.defaultView?.navigator.clipboard?.writeText(text).catch(() => undefined))
  return button
}

const drawn = new WeakMap<Element, string>()

/**
 * Draw `answer` (the journal route's JSON; undefined while there is none yet) into `target`,
 * replacing what it held. Drawing the same answer and options again changes nothing (so a
 * poll does not move the focus).
 */
export function renderWaterfall(target: Element, answer: JournalAnswer | undefined, options: WaterfallOptions = {}): void {
  const key = JSON.stringify([answer, options])
  if (drawn.get(target) === key) return
  drawn.set(target, key)
  const doc = target.ownerDocument
  if (options.styles !== false) adoptStyles(doc)
  const correlationId = answer?.correlation_id ?? options.correlationId ?? ''
  const state = answer?.verdict.state
  const traceId = answer?.trace_ids[0] ?? options.traceId ?? ''
  const template = answer?.trace_url !== undefined ? answer.trace_url : options.traceUrl
  // A sampled-out click has no trace in the backend: no link to an error page.
  const traceLink = template && traceId && state !== 'sampled_out' ? template.replace('{trace_id}', encodeURIComponent(traceId)) : undefined

  const header = h(doc, 'header')
  if (options.title) header.append(h(doc, 'strong', {}, options.title))
  if (options.status) header.append(h(doc, 'span', { class: 'ct-status', 'data-testid': 'waterfall-status' }, options.status))
  header.append(
    h(doc, 'span', { class: 'ct-verdict', 'data-testid': 'verdict' }, answer ? verdictLine(answer.verdict) : 'waiting for the journal'),
  )
  // The verdict line says it all; where the click stopped is its short form, above the stages
  // (the console's `line` is the verdict line again, so it is not shown twice).
  const where = answer ? diagnosis(answer, options.status) : ''
  const ids = h(
    doc,
    'p',
    { class: 'ct-ids' },
    'correlation ',
    h(doc, 'code', { 'data-testid': 'waterfall-correlation' }, correlationId),
    ' ',
    copyButton(doc, correlationId, 'correlation id'),
    ' trace ',
    h(doc, 'code', { 'data-testid': 'waterfall-trace' }, traceId),
    ' ',
    copyButton(doc, traceId, 'trace id'),
  )
  if (traceLink) ids.append(h(doc, 'a', { href: traceLink, target: '_blank', rel: 'noopener', 'data-testid': 'trace-link' }, 'open trace'))

  const stages = answer?.stages ?? []
  const span = Math.max(1, ...stages.map((s) => s.since_start_ms + (STARTS.has(s.stage) ? (s.duration_ms ?? 0) : 0)))
  // A lane per process, in the order each first appears; stages keep their order within it.
  const lanes = new Map<string, HTMLElement>()
  for (const s of stages) {
    const process = stageProcess(s)
    let list = lanes.get(process)
    if (!list) {
      list = h(doc, 'ol', { 'aria-label': `stages in ${process}` })
      lanes.set(process, list)
    }
    const width = s.duration_ms ?? 0
    const left = STARTS.has(s.stage) ? s.since_start_ms : Math.max(0, s.since_start_ms - width)
    const bar = h(doc, 'span', { class: 'ct-bar' })
    bar.style.left = `${(100 * left) / span}%`
    bar.style.width = `${(100 * width) / span}%`
    const time = `+${ms(s.since_start_ms)}${s.duration_ms === null ? '' : ` · ${ms(s.duration_ms)}`}`
    list.append(
      h(
        doc,
        'li',
        { 'data-testid': `stage-${s.stage}`, class: [s.stage, s.outcome ?? ''].join(' ').trim() },
        h(doc, 'span', { class: 'ct-name' }, stageLabel(s)),
        h(doc, 'span', { class: 'ct-axis', 'aria-hidden': 'true' }, bar),
        h(doc, 'span', { class: 'ct-time' }, time),
        h(doc, 'span', { class: 'ct-detail', title: s.detail ?? undefined }, `${s.outcome ?? ''} ${s.detail ?? ''}`.trim()),
      ),
    )
  }
  const article = h(
    doc,
    'article',
    {
      class: ['ct-waterfall', options.status ?? state ?? ''].join(' ').trim(),
      'data-testid': 'waterfall',
      'data-correlation': correlationId,
      'data-verdict': state,
    },
    header,
    h(doc, 'p', { class: 'ct-where', 'data-testid': 'diagnosis' }, where),
    ids,
  )
  for (const [process, list] of lanes) {
    article.append(h(doc, 'section', { class: 'ct-lane', 'data-testid': 'lane', 'data-process': process }, h(doc, 'h4', {}, process), list))
  }
  target.replaceChildren(article)
}
