// clicktrace-pinia/testing: fakes of the server for unit tests of stores that use the plugin.

export { exposeTestHook, MAX_TEST_RECORDS, TEST_HOOK_NAME, type TestHook, type TestHookInstaller } from '../testhook.js'
export { ACCEPTED, type Answer, type MemoryFetch, memoryFetch, type Responder, type SentRequest } from './fetch.js'
export { MemoryTransport, memoryTransport } from './transport.js'
