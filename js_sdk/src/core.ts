// clicktrace-pinia/core: the framework-free client (session, transport, resume, commands,
// deadlines, spans) and the rebase model, for other frameworks and for tests; no Vue, no Pinia.
export { createClient, DEFAULT_DEADLINE_MS } from './client.js'
export { clonePlain } from './clone.js'
export * from './common.js'
export { formatTraceparent, parseCorrelationId, parseTraceparent, type SpanContext } from './ids.js'
export type { PropagateTo } from './origin.js'
export * from './protocol.js'
export { type Mutation, type Rebase, type RebaseTarget, rebase } from './rebase.js'
export type { TestHook, TestHookInstaller } from './testhook.js'
export type { ActionSpan, Tracing } from './trace/types.js'
export type { ClicktraceClient, CommandEffects, Outcome } from './types.js'
