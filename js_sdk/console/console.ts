// The operator console's page (docs/observe.md "Console"): plain DOM, no framework, bundled by
// console/build.mjs into py_sdk/clicktrace/console/_static/console.js, which the SDK serves under
// a strict CSP (no inline script or style: every element built here, positions through the
// CSSOM, pictures as SVG attributes). It reads the console's JSON routes (same origin, the
// HttpOnly cookie goes along) and draws a click with the same waterfall as the demo's page.
import { isJournalAnswer, type JournalAnswer } from '../src/journal.js'
import { renderWaterfall } from '../src/waterfall.js'

interface Click {
  correlation_id: string
  action: string | null
  client_id: string | null
  started_ms: number
  verdict: { state: string; text: string }
  line: string
}
interface LatencyRow {
  stage?: string
  p50_ms: number | null
  p99_ms: number | null
  count: number
}
interface Latency {
  minutes: number
  stages: LatencyRow[]
  click_to_settled: LatencyRow
  series: { t_ms: number; p50_ms: number | null; p99_ms: number | null }[]
}
interface HealthEntry {
  status?: string
  description?: string
  data?: Record<string, unknown>
}

/** The live views poll this often while the page is visible (the contract's 2 s). */
const POLL_MS = 2_000
/** Latency and health move slower: every this many polls. */
const SLOW_EVERY = 5
const LATENCY_MINUTES = 15
const STATES = [
  'confirmed',
  'rejected',
  'dead_lettered',
  'refused',
  'lost',
  'stuck',
  'in_flight',
  'timed_out',
  'trace_broken',
  'sampled_out',
  'unknown',
]
const NEEDS = [
  ['stuck', 'stuck'],
  ['lost', 'lost'],
  ['dead_lettered', 'dead-lettered'],
  ['timed_out', 'timed out'],
] as const
const SINCE = [
  ['', 'any time'],
  ['5', 'last 5 minutes'],
  ['15', 'last 15 minutes'],
  ['60', 'last hour'],
  ['1440', 'last day'],
] as const

// The page's own address is the console's prefix (the shell is served at P and P/).
const base = location.pathname.replace(/\/+$/, '')
const api = (path: string): string => `${base}/api/${path}`

type Child = Node | string
function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | undefined> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined) el.setAttribute(k, v)
  el.append(...children)
  return el
}
const SVG = 'http://www.w3.org/2000/svg'
function s(tag: string, attrs: Record<string, string | number>, ...children: Child[]): SVGElement {
  const el = document.createElementNS(SVG, tag)
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v))
  el.append(...children)
  return el
}

class Failed extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message)
  }
}

/** GET or POST a console route; the error shape's message (or the status) when it fails. */
async function call(path: string, init: RequestInit = {}): Promise<unknown> {
  const reply = await fetch(path, { credentials: 'same-origin', ...init })
  if (reply.status === 401) {
    // The cookie expired: the shell answers the sign-in page now.
    location.reload()
    throw new Failed(401, 'signed out')
  }
  const body: unknown = await reply.json().catch(() => undefined)
  if (!reply.ok && !(path.endsWith('/health') && reply.status === 503)) {
    const error = (body as { error?: { message?: unknown; code?: unknown } } | undefined)?.error
    throw new Failed(reply.status, String(error?.message ?? error?.code ?? `HTTP ${reply.status}`))
  }
  return body
}

const time = (ms: number): string => new Date(ms).toLocaleTimeString()
const msText = (v: number | null | undefined): string => (v === null || v === undefined ? '–' : `${Math.round(v)} ms`)
const words = (state: string): string => state.replace(/_/g, ' ').replace('dead lettered', 'dead-lettered')

// ---- the page's frame ------------------------------------------------------------------

const status = h('p', { class: 'status', role: 'status', 'aria-live': 'polite', 'data-testid': 'console-status' })
function say(text: string): void {
  status.textContent = text
}

function section(id: string, title: string, ...children: Child[]): HTMLElement {
  return h('section', { id, 'aria-labelledby': `${id}-title` }, h('h2', { id: `${id}-title` }, title), ...children)
}

// ---- find a click and draw it ----------------------------------------------------------

const query = h('input', { id: 'q', name: 'q', type: 'search', autocomplete: 'off', spellcheck: 'false', 'data-testid': 'search-input' })
const searchForm = h(
  'form',
  { role: 'search', class: 'search', 'data-testid': 'search' },
  h('label', { for: 'q' }, 'Correlation id, whole or part'),
  query,
  h('button', { type: 'submit', 'data-testid': 'search-button' }, 'Find'),
)
const matches = h('ul', { class: 'matches', 'data-testid': 'matches', 'aria-label': 'matching clicks' })
const clickView = h('div', { class: 'click', 'data-testid': 'click', tabindex: '-1' })
const resendDialog = h('dialog', { 'aria-labelledby': 'resend-title', 'data-testid': 'resend-dialog' })
let shown: string | undefined

function openButton(click: Click, text: string): HTMLButtonElement {
  const button = h(
    'button',
    { type: 'button', class: 'link', 'data-testid': 'open-click', 'aria-label': `open click ${click.correlation_id}` },
    text,
  )
  button.addEventListener('click', () => void show(click.correlation_id, true))
  return button
}

async function find(q: string): Promise<void> {
  matches.replaceChildren()
  if (!q) return
  say(`looking for ${q}…`)
  const found = (await call(`${api('clicks')}?${new URLSearchParams({ q, limit: '20' })}`)) as { items: Click[] }
  const exact = found.items.find((c) => c.correlation_id.toLowerCase() === q.toLowerCase())
  if (exact || found.items.length === 1) {
    say('')
    await show((exact ?? found.items[0]!).correlation_id, true)
    return
  }
  if (found.items.length === 0) {
    say(`no click matches ${q}`)
    return
  }
  say(`${found.items.length} clicks match ${q}: pick one`)
  for (const c of found.items) matches.append(h('li', {}, openButton(c, c.correlation_id), ` ${c.action ?? ''} · ${c.line}`))
  matches.querySelector('button')?.focus()
}

async function show(correlationId: string, focus = false): Promise<void> {
  // The operator's pick wins over a poll of the click shown before it.
  if (focus) shown = correlationId
  let body: unknown
  try {
    body = await call(api(`clicks/${encodeURIComponent(correlationId)}`))
  } catch (e) {
    if (e instanceof Failed && e.status === 404) {
      if (focus) {
        say(`no journal for ${correlationId}`)
        clickView.hidden = true
      }
      return
    }
    throw e
  }
  if (correlationId !== shown) return
  if (!isJournalAnswer(body)) throw new Failed(0, 'the console answered something else than a journal')
  drawClick(body)
  if (focus) {
    clickView.focus()
    clickView.scrollIntoView({ block: 'nearest' })
  }
}

// The open click's parts stay in place between polls (the waterfall redraws only what changed),
// so a poll never takes the focus from the operator.
const clickTitle = h('h3')
const clickWaterfall = h('div')
const clickActions = h('p', { class: 'actions' })
clickView.append(clickTitle, clickWaterfall, clickActions)
clickView.hidden = true

function drawClick(answer: JournalAnswer): void {
  clickView.hidden = false
  clickTitle.textContent = `Click ${answer.correlation_id}`
  renderWaterfall(clickWaterfall, answer, { styles: false })
  const resendable = answer.resendable === true
  if (resendable === Boolean(clickActions.firstChild)) return
  if (!resendable) {
    clickActions.replaceChildren()
    return
  }
  const resend = h('button', { type: 'button', class: 'danger', 'data-testid': 'resend' }, 'Resend…')
  resend.addEventListener('click', () => {
    if (shown) confirmResend(shown)
  })
  clickActions.replaceChildren(resend)
}

function confirmResend(correlationId: string): void {
  const send = h('button', { type: 'button', class: 'danger', 'data-testid': 'resend-confirm' }, 'Send again')
  const cancel = h('button', { type: 'button', 'data-testid': 'resend-cancel' }, 'Cancel')
  resendDialog.replaceChildren(
    h('h3', { id: 'resend-title' }, 'Send the command again?'),
    h(
      'p',
      {},
      'The dead-lettered command of ',
      h('code', {}, correlationId),
      ' goes through the bus again as a new attempt of the same click. Fix its cause first; the claims keep it applied once.',
    ),
    h('p', { class: 'actions' }, cancel, ' ', send),
  )
  cancel.addEventListener('click', () => resendDialog.close())
  send.addEventListener('click', () => {
    send.disabled = true
    void resend(correlationId).finally(() => resendDialog.close())
  })
  resendDialog.showModal()
  cancel.focus()
}

async function resend(correlationId: string): Promise<void> {
  try {
    const sent = (await call(api(`clicks/${encodeURIComponent(correlationId)}/resend`), {
      method: 'POST',
      headers: { 'x-clicktrace-console': '1' },
    })) as { attempt?: unknown }
    say(`sent ${correlationId} again (attempt ${String(sent.attempt ?? '?')})`)
  } catch (e) {
    say(`not sent: ${e instanceof Error ? e.message : String(e)}`)
  }
  await show(correlationId)
}

searchForm.addEventListener('submit', (event) => {
  event.preventDefault()
  void find(query.value.trim()).catch(report)
})

// ---- recent clicks -----------------------------------------------------------------------

function select(id: string, label: string, options: readonly (readonly [string, string])[]): [HTMLElement, HTMLSelectElement] {
  const el = h('select', { id, name: id, 'data-testid': `filter-${id}` }, ...options.map(([value, text]) => h('option', { value }, text)))
  return [h('span', { class: 'field' }, h('label', { for: id }, label), el), el]
}
function text(id: string, label: string): [HTMLElement, HTMLInputElement] {
  const el = h('input', { id, name: id, type: 'text', autocomplete: 'off', 'data-testid': `filter-${id}` })
  return [h('span', { class: 'field' }, h('label', { for: id }, label), el), el]
}
const [verdictField, verdictFilter] = select('verdict', 'Verdict', [['', 'any'], ...STATES.map((v) => [v, words(v)] as const)])
const [actionField, actionFilter] = text('action', 'Action')
const [clientField, clientFilter] = text('client', 'Client')
const [sinceField, sinceFilter] = select('since', 'Started', SINCE)
const live = h('input', { id: 'live', type: 'checkbox', checked: '', 'data-testid': 'live' })
const filters = h(
  'form',
  { class: 'filters', 'aria-label': 'filter the recent clicks', 'data-testid': 'filters' },
  verdictField,
  actionField,
  clientField,
  sinceField,
  h('span', { class: 'field' }, live, h('label', { for: 'live' }, 'live')),
)
const recentBody = h('tbody', { 'data-testid': 'recent' })
const recentTable = h(
  'table',
  {},
  h('caption', { class: 'hidden' }, 'recent clicks, newest first'),
  h('thead', {}, h('tr', {}, ...['started', 'correlation id', 'action', 'client', 'verdict'].map((t) => h('th', { scope: 'col' }, t)))),
  recentBody,
)

function row(c: Click): HTMLTableRowElement {
  return h(
    'tr',
    { 'data-testid': 'click-row', 'data-correlation': c.correlation_id, 'data-verdict': c.verdict.state, class: c.verdict.state },
    h('td', {}, time(c.started_ms)),
    h('td', {}, openButton(c, c.correlation_id)),
    h('td', {}, c.action ?? ''),
    h('td', { class: 'client' }, c.client_id ?? ''),
    h('td', { title: c.line }, h('span', { class: `badge ${c.verdict.state}` }, words(c.verdict.state)), ` ${c.line}`),
  )
}

/** Replace a list's rows, keeping the focused row's button focused (a poll must not steal focus). */
function fill(body: HTMLElement, rows: HTMLElement[]): void {
  const focused = body.contains(document.activeElement)
    ? document.activeElement?.closest('[data-correlation]')?.getAttribute('data-correlation')
    : null
  body.replaceChildren(...rows)
  if (focused) body.querySelector<HTMLElement>(`[data-correlation="${CSS.escape(focused)}"] button`)?.focus()
}

async function recent(): Promise<void> {
  const params = new URLSearchParams({ limit: '50' })
  if (verdictFilter.value) params.set('verdict', verdictFilter.value)
  if (actionFilter.value.trim()) params.set('action', actionFilter.value.trim())
  if (clientFilter.value.trim()) params.set('client', clientFilter.value.trim())
  if (sinceFilter.value) params.set('since_ms', String(Date.now() - Number(sinceFilter.value) * 60_000))
  const got = (await call(`${api('clicks')}?${params}`)) as { items: Click[] }
  const rows = got.items.map(row)
  fill(recentBody, rows.length ? rows : [h('tr', {}, h('td', { colspan: '5' }, 'no clicks'))])
}
filters.addEventListener('submit', (event) => event.preventDefault())
filters.addEventListener('change', () => void recent().catch(report))

// ---- what needs a person -----------------------------------------------------------------

const counts = h('ul', { class: 'counts', 'data-testid': 'attention-counts' })
const attentionBody = h('tbody', { 'data-testid': 'attention' })
const attentionTable = h(
  'table',
  {},
  h('caption', { class: 'hidden' }, 'clicks that need a person, oldest first'),
  h('thead', {}, h('tr', {}, ...['started', 'correlation id', 'action', 'client', 'verdict'].map((t) => h('th', { scope: 'col' }, t)))),
  attentionBody,
)

async function attention(): Promise<void> {
  const got = (await call(api('attention'))) as { counts: Record<string, number>; items: Click[] }
  counts.replaceChildren(
    ...NEEDS.map(([key, label]) =>
      h(
        'li',
        { class: (got.counts[key] ?? 0) > 0 ? `count ${key} some` : `count ${key}`, 'data-testid': `count-${key}` },
        h('strong', {}, String(got.counts[key] ?? 0)),
        ` ${label}`,
      ),
    ),
  )
  const rows = got.items.map(row)
  fill(attentionBody, rows.length ? rows : [h('tr', {}, h('td', { colspan: '5' }, 'nothing needs a person'))])
}

// ---- latency, as pictures ----------------------------------------------------------------

const latencyView = h('div', { class: 'latency', 'data-testid': 'latency' })

function bars(rows: LatencyRow[], label: string): SVGElement {
  const top = Math.max(1, ...rows.map((r) => r.p99_ms ?? r.p50_ms ?? 0))
  const rowH = 22
  const left = 150
  const width = 560
  const svg = s(
    'svg',
    { viewBox: `0 0 ${left + width + 110} ${rows.length * rowH + 8}`, role: 'img', 'aria-label': label, class: 'bars' },
    s('title', {}, label),
  )
  rows.forEach((r, i) => {
    const y = 4 + i * rowH
    const scale = (v: number | null): number => ((v ?? 0) / top) * width
    svg.append(
      s('text', { x: left - 8, y: y + 14, 'text-anchor': 'end', class: 'label' }, r.stage ?? 'click → settled'),
      s('rect', { x: left, y: y + 3, width: Math.max(1, scale(r.p99_ms)), height: 14, class: 'p99' }),
      s('rect', { x: left, y: y + 3, width: Math.max(1, scale(r.p50_ms)), height: 14, class: 'p50' }),
      s('text', { x: left + width + 6, y: y + 14, class: 'value' }, `${msText(r.p50_ms)} / ${msText(r.p99_ms)}`),
    )
  })
  return svg
}

function line(series: Latency['series'], minutes: number, label: string): SVGElement {
  const w = 820
  const ht = 160
  const pad = 60
  const top = Math.max(1, ...series.map((p) => p.p99_ms ?? p.p50_ms ?? 0))
  const end = Math.max(Date.now(), ...series.map((p) => p.t_ms))
  const start = end - minutes * 60_000
  const x = (t: number): number => pad + ((t - start) / (end - start)) * (w - pad - 8)
  const y = (v: number): number => ht - 20 - (v / top) * (ht - 36)
  const path = (key: 'p50_ms' | 'p99_ms'): string =>
    series
      .filter((p) => p[key] !== null)
      .map((p) => `${x(p.t_ms).toFixed(1)},${y(p[key] ?? 0).toFixed(1)}`)
      .join(' ')
  return s(
    'svg',
    { viewBox: `0 0 ${w} ${ht}`, role: 'img', 'aria-label': label, class: 'series' },
    s('title', {}, label),
    s('line', { x1: pad, y1: ht - 20, x2: w - 8, y2: ht - 20, class: 'axis' }),
    s('text', { x: pad - 4, y: 20, 'text-anchor': 'end', class: 'label' }, msText(top)),
    s('text', { x: pad, y: ht - 4, class: 'label' }, `${minutes} min ago`),
    s('text', { x: w - 8, y: ht - 4, 'text-anchor': 'end', class: 'label' }, 'now'),
    s('polyline', { points: path('p99_ms'), class: 'p99' }),
    s('polyline', { points: path('p50_ms'), class: 'p50' }),
    // A dot per minute too: a window with one busy minute is a point, not a line.
    ...(['p99_ms', 'p50_ms'] as const).flatMap((key) =>
      series
        .filter((p) => p[key] !== null)
        .map((p) => s('circle', { cx: x(p.t_ms).toFixed(1), cy: y(p[key] ?? 0).toFixed(1), r: 3, class: key.slice(0, 3) })),
    ),
  )
}

async function latency(): Promise<void> {
  const got = (await call(`${api('latency')}?minutes=${LATENCY_MINUTES}`)) as Latency
  const settled = { ...got.click_to_settled, stage: 'click → settled' }
  const stages = got.stages.filter((r) => r.count > 0)
  latencyView.replaceChildren(
    h(
      'p',
      { class: 'legend' },
      h('span', { class: 'key p50' }),
      ' p50 ',
      h('span', { class: 'key p99' }),
      ' p99',
      ` · last ${got.minutes} minutes, ${settled.count} clicks settled`,
    ),
    stages.length || settled.count
      ? bars([...stages, settled], `p50 and p99 per stage over the last ${got.minutes} minutes`)
      : h('p', {}, 'no clicks in this window'),
    h('h3', {}, 'Click → settled, per minute'),
    line(got.series, got.minutes, `click to settled, p50 and p99 per minute over the last ${got.minutes} minutes`),
  )
}

// ---- health ------------------------------------------------------------------------------

const healthView = h('div', { class: 'health', 'data-testid': 'health' })

async function health(): Promise<void> {
  let got: { status?: string; entries?: Record<string, HealthEntry> }
  try {
    got = (await call(api('health'))) as typeof got
  } catch (e) {
    // An app installed without its health route has none to show.
    if (!(e instanceof Failed && e.status === 404)) throw e
    healthView.replaceChildren(h('p', {}, 'This app serves no health report.'))
    return
  }
  const list = h('dl', {})
  for (const [name, entry] of Object.entries(got.entries ?? {})) {
    const data = Object.entries(entry.data ?? {}).map(([k, v]) => `${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`)
    list.append(
      h('dt', {}, name, ' ', h('span', { class: `badge ${String(entry.status ?? '').toLowerCase()}` }, String(entry.status ?? '?'))),
      h('dd', {}, entry.description ?? '', ...data.map((d) => h('div', { class: 'data' }, d))),
    )
  }
  healthView.replaceChildren(
    h(
      'p',
      {},
      'Overall: ',
      h('span', { class: `badge ${String(got.status ?? '').toLowerCase()}`, 'data-testid': 'health-status' }, got.status ?? '?'),
    ),
    list,
  )
}

// ---- put together, and kept live --------------------------------------------------------

function report(e: unknown): void {
  if (!(e instanceof Failed && e.status === 401)) say(`the console could not load: ${e instanceof Error ? e.message : String(e)}`)
}

const signOut = h('button', { type: 'button', 'data-testid': 'sign-out' }, 'Sign out')
signOut.addEventListener('click', () => {
  void fetch(`${base}/session/end`, { method: 'POST', headers: { 'x-clicktrace-console': '1' }, credentials: 'same-origin' }).finally(() =>
    location.reload(),
  )
})

const root = document.getElementById('console') ?? document.body
root.replaceChildren(
  h(
    'header',
    { class: 'top' },
    h('h1', {}, 'clicktrace console'),
    h(
      'nav',
      { 'aria-label': 'views' },
      ...[
        ['find', 'Find a click'],
        ['needs-a-person', 'Needs a person'],
        ['recent-clicks', 'Recent'],
        ['latency-view', 'Latency'],
        ['health-view', 'Health'],
      ].map(([id, t]) => h('a', { href: `#${id}` }, t ?? '')),
    ),
    signOut,
  ),
  h(
    'main',
    {},
    status,
    section('find', 'Find a click', searchForm, matches, clickView),
    section('needs-a-person', 'Needs a person', counts, attentionTable),
    section('recent-clicks', 'Recent clicks', filters, recentTable),
    section('latency-view', `Stage latency`, latencyView),
    section('health-view', 'Health', healthView),
    resendDialog,
  ),
)

let tick = 0
async function refresh(): Promise<void> {
  const slow = tick % SLOW_EVERY === 0
  tick += 1
  const jobs: Promise<void>[] = [recent(), attention()]
  if (slow) jobs.push(latency(), health())
  // The open click, as it changes (a resent one goes on), but not while a resend is confirmed.
  if (shown && !resendDialog.open) jobs.push(show(shown))
  const results = await Promise.allSettled(jobs)
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')
  if (failed) report(failed.reason)
  else if (status.textContent?.startsWith('the console could not load')) say('')
}

async function loop(): Promise<void> {
  await refresh()
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, POLL_MS))
    if (live.checked && document.visibilityState === 'visible') await refresh()
  }
}
void loop()
