// readJournal: a tab reads its own click's journal with the session the plugin obtained.
import { describe, expect, it } from 'vitest'
import { isJournalAnswer, readJournal } from '../src/journal.js'
import { flush, setup } from './harness.js'

const ANSWER = {
  correlation_id: '01JCORR00000000000000000AA',
  client_id: '01JCLIENT0000000000000000A',
  trace_ids: ['4bf92f3577b34da6a3ce929d0e0e4736'],
  verdict: { state: 'confirmed', stage: 'settled', outcome: 'confirmed', ms: 42, text: 'in 42 ms', tab: null },
  stages: [],
}

describe('readJournal', () => {
  it('sends the session token of the page and answers the journal', async () => {
    const { send } = setup()
    send()
    await flush()
    const asked: { url: string; headers: Record<string, string> }[] = []
    const fetch = (async (url: RequestInfo | URL, init?: RequestInit) => {
      asked.push({ url: String(url), headers: Object.fromEntries(new Headers(init?.headers)) })
      return new Response(JSON.stringify(ANSWER), { status: 200 })
    }) as typeof globalThis.fetch
    const answer = await readJournal('01JCORR/../x', { fetch })
    expect(answer?.verdict.state).toBe('confirmed')
    expect(asked).toEqual([{ url: '/clicktrace/journal/01JCORR%2F..%2Fx', headers: { 'x-clicktrace-client': 'tok-1' } }])
  })

  it('answers undefined for a refusal, a 404 or a body that is not a journal', async () => {
    const { send } = setup()
    send()
    await flush()
    for (const reply of [
      new Response('{"error":{"code":"not_found"}}', { status: 404 }),
      new Response('not json', { status: 200 }),
      new Response('{"correlation_id": 3}', { status: 200 }),
    ]) {
      const fetch = (async () => reply) as typeof globalThis.fetch
      expect(await readJournal('x', { fetch, url: '/j' })).toBeUndefined()
    }
  })

  it('checks the shape of untrusted JSON', () => {
    expect(isJournalAnswer(ANSWER)).toBe(true)
    expect(isJournalAnswer(null)).toBe(false)
    expect(isJournalAnswer({ ...ANSWER, verdict: { state: 1 } })).toBe(false)
    expect(isJournalAnswer({ ...ANSWER, stages: {} })).toBe(false)
  })
})
