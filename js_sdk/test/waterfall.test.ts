// The waterfall renderer: stages on one axis in a lane per process, the verdict and where the
// click stopped in words, text (never HTML) from the journal, a trace link only when it leads
// somewhere.
import { describe, expect, it } from 'vitest'
import type { JournalAnswer, Stage } from '../src/journal.js'
import { diagnosis, renderWaterfall, stageLabel, verdictLine } from '../src/waterfall.js'

const stage = (name: string, since: number, extra: Partial<Stage> = {}): Stage => ({
  stage: name,
  at: 1_700_000_000 + since / 1000,
  since_start_ms: since,
  since_previous_ms: 0,
  trace_id: null,
  span_id: null,
  process: 'api@node1',
  attempt: null,
  outcome: null,
  detail: null,
  duration_ms: null,
  ...extra,
})

function answer(state: string, stages: Stage[], extra: Partial<JournalAnswer> = {}): JournalAnswer {
  return {
    correlation_id: '01JCORR00000000000000000AA',
    client_id: null,
    trace_ids: ['4bf92f3577b34da6a3ce929d0e0e4736'],
    verdict: { state, stage: stages.at(-1)?.stage ?? '', outcome: null, ms: null, text: 'at delivered', tab: null },
    stages,
    ...extra,
  }
}

const deadLettered = answer('dead_lettered', [
  stage('clicked', 0),
  stage('http', 2, { duration_ms: 20 }),
  stage('accepted', 10, { duration_ms: 5 }),
  stage('delivered', 30, { process: 'worker@node2', attempt: 1 }),
  stage('retried', 40, { process: 'worker@node2', attempt: 1, outcome: 'error', detail: '<img src=x onerror=alert(1)>' }),
  stage('dead_lettered', 90, { process: 'worker@node2', attempt: 3 }),
])

describe('renderWaterfall', () => {
  it('draws a lane per process, in the order each first appears, with every stage', () => {
    const el = document.createElement('div')
    renderWaterfall(el, deadLettered, { styles: false })
    const lanes = [...el.querySelectorAll('[data-testid="lane"]')].map((l) => l.getAttribute('data-process'))
    expect(lanes).toEqual(['browser', 'api@node1', 'worker@node2'])
    expect(el.querySelectorAll('li')).toHaveLength(6)
    expect(el.querySelector('[data-testid="stage-dead_lettered"] .ct-name')?.textContent).toBe('dead-lettered (attempt 3)')
    expect(el.querySelector('[data-testid="diagnosis"]')?.textContent).toBe('dead-lettered after 3 attempts')
    expect(el.querySelector('[data-testid="verdict"]')?.textContent).toBe('dead-lettered at delivered')
  })

  it('puts every bar on one axis: the last stage ends at the right edge', () => {
    const el = document.createElement('div')
    renderWaterfall(el, deadLettered, { styles: false })
    const bar = (name: string) => el.querySelector<HTMLElement>(`[data-testid="stage-${name}"] .ct-bar`)!.style
    expect(bar('dead_lettered').left).toBe('100%')
    // HTTP is recorded at its start: its bar begins there and lasts its duration.
    expect(bar('http').left).toBe(`${(100 * 2) / 90}%`)
    expect(bar('http').width).toBe(`${(100 * 20) / 90}%`)
  })

  it('writes what the journal says as text, never as HTML', () => {
    const el = document.createElement('div')
    renderWaterfall(el, deadLettered, { styles: false })
    expect(el.querySelector('img')).toBeNull()
    expect(el.querySelector('[data-testid="stage-retried"] .ct-detail')?.textContent).toBe('error <img src=x onerror=alert(1)>')
  })

  it("prefers the server's trace link, and links no sampled-out trace", () => {
    const el = document.createElement('div')
    renderWaterfall(
      el,
      answer('lost', [stage('stored', 5)], { line: 'lost at stored: never published', trace_url: 'https://ui/t/{trace_id}' }),
      {
        traceUrl: 'https://other/{trace_id}',
        styles: false,
      },
    )
    expect(el.querySelector('[data-testid="diagnosis"]')?.textContent).toBe('accepted and stored but never published')
    expect(el.querySelector('a')?.getAttribute('href')).toBe('https://ui/t/4bf92f3577b34da6a3ce929d0e0e4736')
    renderWaterfall(el, answer('sampled_out', [stage('clicked', 0)]), { traceUrl: 'https://ui/{trace_id}', styles: false })
    expect(el.querySelector('a')).toBeNull()
  })

  it('waits for the journal with the tab own ids, and draws the same answer only once', () => {
    const el = document.createElement('div')
    renderWaterfall(el, undefined, { correlationId: 'abc', traceId: 'def', status: 'pending', styles: false })
    expect(el.querySelector('[data-testid="verdict"]')?.textContent).toBe('waiting for the journal')
    expect(el.querySelector('[data-testid="waterfall-correlation"]')?.textContent).toBe('abc')
    const first = el.firstElementChild
    renderWaterfall(el, undefined, { correlationId: 'abc', traceId: 'def', status: 'pending', styles: false })
    expect(el.firstElementChild).toBe(first)
    renderWaterfall(el, undefined, { correlationId: 'abc', traceId: 'def', status: 'confirmed', styles: false })
    expect(el.firstElementChild).not.toBe(first)
  })

  it('adds its stylesheet to the document once', () => {
    const before = document.adoptedStyleSheets?.length ?? 0
    renderWaterfall(document.createElement('div'), deadLettered)
    renderWaterfall(document.createElement('div'), deadLettered)
    if (document.adoptedStyleSheets) expect(document.adoptedStyleSheets.length).toBe(before + 1)
  })
})

describe('the words', () => {
  it('says where a click stopped', () => {
    expect(diagnosis(answer('lost', [stage('accepted', 1), stage('stored', 2)]))).toBe('accepted and stored but never published')
    expect(diagnosis(answer('stuck', [stage('published', 1), stage('delivered', 2)]))).toBe('stuck at delivered')
    expect(diagnosis(answer('in_flight', [stage('published', 1)]))).toBe('in flight at published')
    expect(diagnosis(answer('confirmed', [stage('notified', 1), stage('settled', 3, { outcome: 'confirmed' })]))).toBe('settled: confirmed')
    expect(diagnosis(answer('in_flight', [stage('delivered', 1), stage('settled', 3)]), 'timed_out')).toBe('timed out: stuck at delivered')
    expect(diagnosis(answer('in_flight', []))).toBe('waiting for the server')
    // Sent again by an operator: no longer a dead letter, the new attempt goes on.
    const sent = [...deadLettered.stages, stage('resent', 100, { attempt: 2 })]
    expect(diagnosis(answer('in_flight', sent))).toBe('in flight at resent')
    const resent = [...sent, stage('delivered', 110, { attempt: 2 })]
    expect(diagnosis(answer('in_flight', resent))).toBe('in flight at delivered')
    expect(diagnosis(answer('in_flight', [...resent, stage('acked', 120)]))).toBe('in flight at acked')
  })

  it('joins the state and its text, and names attempts', () => {
    expect(verdictLine({ state: 'in_flight', stage: 'x', outcome: null, ms: null, text: '', tab: null })).toBe('in flight')
    expect(stageLabel(stage('delivered', 0, { attempt: 2 }))).toBe('delivered (attempt 2)')
    expect(stageLabel(stage('stored', 0, { attempt: 2 }))).toBe('stored')
  })
})
