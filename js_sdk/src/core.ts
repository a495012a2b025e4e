// clicktrace-pinia/core: the framework-free client (session, transport, resume, commands,
// deadlines, spans) and the rebase model, for other frameworks and for tests; no Vue, no Pinia.
export { type ClicktraceClient, type CommandEffects, createClient, DEFAULT_DEADLINE_MS, type Outcome } from './client.js'
export { clonePlain } from './clone.js'
export { ClicktraceError } from './errors.js'
export { formatTraceparent, parseCorrelationId, parseTraceparent, type SpanContext } from './ids.js'
export type { PropagateTo } from './origin.js'
export * from './protocol.js'
export { type Mutation, type Rebase, type RebaseTarget, rebase } from './rebase.js'
export type { TestHook, TestHookInstaller } from './testhook.js'
export type { ActionSpan, Tracing } from './trace/types.js'
export { type SocketIoOptions, socketIoTransport } from './transport/socketio.js'
export type { Hello, Transport, TransportHandlers } from './transport/types.js'
export { type WebSocketOptions, webSocketTransport } from './transport/websocket.js'
export type {
  ClicktraceOptions,
  CommandError,
  CommandHandle,
  CommandOutcome,
  CommandRecord,
  CommandRequest,
  CommandStatus,
  ConnectionStatus,
} from './types.js'
