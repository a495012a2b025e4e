// clicktrace-pinia/core: the framework-free client (session, transport, resume, commands,
// deadlines, spans) and the rebase model, for other frameworks and for tests; no Vue, no Pinia.
export { createClient, type ClicktraceClient, type CommandEffects, type Outcome, DEFAULT_DEADLINE_MS } from './client.js'
export { rebase, type Mutation, type Rebase, type RebaseTarget } from './rebase.js'
export { clonePlain } from './clone.js'
export { parseCorrelationId, parseTraceparent, formatTraceparent, type SpanContext } from './ids.js'
export * from './protocol.js'
export { ClicktraceError } from './errors.js'
export type {
  ClicktraceOptions, CommandError, CommandHandle, CommandOutcome, CommandRecord, CommandRequest, CommandStatus,
  ConnectionStatus,
} from './types.js'
export type { Hello, Transport, TransportHandlers } from './transport/types.js'
export { socketIoTransport, type SocketIoOptions } from './transport/socketio.js'
export { webSocketTransport, type WebSocketOptions } from './transport/websocket.js'
export type { Tracing, ActionSpan } from './trace/types.js'
export type { PropagateTo } from './origin.js'
export type { TestHook, TestHookInstaller } from './testhook.js'
