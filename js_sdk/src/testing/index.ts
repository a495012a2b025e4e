// clicktrace-pinia/testing: fakes of the server for unit tests of stores that use the plugin,
// and the opt-in hook end-to-end tests read the page's commands through.

export { ACCEPTED, type Answer, type MemoryFetch, memoryFetch, type Responder, type SentRequest } from './fetch.js'
export { exposeTestHook, type TestHook, type TestHookInstaller } from './hook.js'
export { MemoryTransport, memoryTransport } from './transport.js'
