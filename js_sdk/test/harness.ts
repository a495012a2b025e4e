// The plugin's own tests use the shipped testing kit (src/testing) as a user's tests would;
// these are the helpers they add: letting promises run, and a client core under test.
import { createClient } from '../src/client.js'
import { MemoryTransport, memoryFetch, type Responder } from '../src/testing/index.js'
import type { ClicktraceOptions, CommandEffects } from '../src/types.js'

/** Let pending promise callbacks run (no timers involved). */
export const flush = async (): Promise<void> => {
  for (let i = 0; i < 10; i++) await new Promise<void>((r) => queueMicrotask(r))
}

/** A client core on the in-memory transport and fetch, recording statuses, errors and settlements. */
export function setup(options: Partial<ClicktraceOptions> = {}, responder?: Responder) {
  const transport = new MemoryTransport()
  const net = memoryFetch(responder)
  const statuses: string[] = []
  const errors: unknown[] = []
  const client = createClient({
    transport,
    fetch: net.fetch,
    tracesUrl: false,
    onStatus: (r) => statuses.push(`${r.name}:${r.status}`),
    onError: (e) => errors.push(e),
    ...options,
  })
  const settles: Array<[string, unknown, boolean]> = []
  const effects: CommandEffects<unknown> = { optimistic: () => {}, settle: (s, d, late) => settles.push([s, d, late]) }
  const send = (url = '/api/x', extra = {}) => client.command({ url, body: { a: 1 }, name: 'x', ...extra }, effects)
  return { client, transport, net, statuses, errors, settles, send }
}
