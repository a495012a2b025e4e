// The shipped testing kit (src/testing) serves the plugin's own tests too: a transport the test
// pushes notifications through, and a fetch that answers the session and command endpoints.
export {
  MemoryTransport as FakeTransport,
  memoryFetch as fakeFetch,
  type Responder,
  type SentRequest as Sent,
} from '../src/testing/index.js'

/** Let pending promise callbacks run (no timers involved). */
export const flush = async (): Promise<void> => {
  for (let i = 0; i < 10; i++) await new Promise<void>((r) => queueMicrotask(r))
}
