// What both entries export (`clicktrace-pinia` and `clicktrace-pinia/core`): the error, the
// two transports (import the one you use: the other stays out of the bundle) and the public
// types of commands and connections.
export { ClicktraceError } from './errors.js'
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
