// clicktrace-pinia/testing: fakes of the server for unit tests of stores that use the plugin.
export { MemoryTransport, memoryTransport } from './transport.js'
export { exposeTestHook, MAX_TEST_RECORDS, TEST_HOOK_NAME, type TestHook, type TestHookInstaller } from '../testhook.js'
export { ACCEPTED, memoryFetch, type Answer, type MemoryFetch, type Responder, type SentRequest } from './fetch.js'
