// clicktrace-pinia/core: the framework-free client (session, transport, resume, commands,
// deadlines, spans) and the rebase model, for other frameworks and for tests; no Vue, no Pinia.
// The main entry's names without the Pinia glue, plus what a glue of your own needs. The wire
// protocol's names (protocol.ts) are not exported: they are the SDK's business, not the API.
export { createClient } from './client.js'
export { ClicktraceError } from './errors.js'
export type { PropagateTo } from './http.js'
export { parseCorrelationId, parseTraceparent, type SpanContext } from './ids.js'
export { clonePlain, type Mutation, type Rebase, type RebaseTarget, rebase } from './rebase.js'
export type { ActionSpan, Tracing } from './trace/types.js'
export { type SocketIoOptions, socketIoTransport } from './transport/socketio.js'
export type { ConnectionStatus, Hello, Transport, TransportHandlers } from './transport/types.js'
export { type WebSocketOptions, webSocketTransport } from './transport/websocket.js'
export type {
  ClicktraceClient,
  ClicktraceOptions,
  CommandEffects,
  CommandError,
  CommandHandle,
  CommandOutcome,
  CommandRecord,
  CommandRequest,
  CommandStatus,
} from './types.js'
