// Replays across reconnects: the server resends from the seq the client names, so a client
// sees overlapping runs. Whatever the overlap, each command settles once, with its own outcome.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { createClient } from '../src/client.js'
import { FakeTransport, fakeFetch, flush } from './fakes.js'

describe('seq handling under replays', () => {
  it('resumes from the last seq seen and settles each command once, in seq order, whatever the overlap', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.constantFrom('confirmed' as const, 'rejected' as const), { minLength: 1, maxLength: 12 }),
        fc.array(fc.nat(30), { maxLength: 8 }),
        async (outcomes, cuts) => {
          const transport = new FakeTransport()
          const client = createClient({ transport, fetch: fakeFetch().fetch, tracesUrl: false, deadlineMs: 1e9 })
          const settled: Array<[number, string]> = []
          const handles = outcomes.map((_, i) =>
            client.command({ url: '/api/x' }, { optimistic: () => {}, settle: (s) => settled.push([i, s]) }),
          )
          await flush()
          const log = outcomes.map((status, i) => ({ seq: i + 1, status, correlation_id: handles[i]!.correlationId }))
          // Deliver the log; at each cut the connection drops and the server replays from
          // what the client says it has seen, possibly after re-sending some already delivered.
          let next = 0
          for (const cut of cuts) {
            const until = Math.min(log.length, next + (cut % 5))
            for (; next < until; next++) transport.raw(log[next])
            const resumeFrom = transport.handlers!.hello().last_seq
            next = Math.max(0, resumeFrom - (cut % 3)) // the server may overlap what was seen
          }
          for (; next < log.length; next++) transport.raw(log[next])
          expect(settled).toEqual(outcomes.map((s, i) => [i, s]))
          expect(handles.map((h) => h.status)).toEqual(outcomes)
          expect(transport.handlers!.hello().last_seq).toBe(outcomes.length)
        },
      ),
      { numRuns: 200 },
    )
  })
})
