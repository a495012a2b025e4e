// clicktrace-pinia: optimistic updates confirmed by the projection, one correlation id and one
// trace from the click to the outcome. The main entry is the plugin and the two transports
// (import the one you use: the other stays out of the bundle); the framework-free client is
// `clicktrace-pinia/core`, the test fakes `clicktrace-pinia/testing`.
import type { _ActionsTree, _GettersTree, StateTree } from 'pinia'
import type { UnwrapRef } from 'vue'
import type { CommandSpec, StoreClicktraceOptions, StoreCommands } from './plugin.js'
import type { Mutation } from './rebase.js'
import type { CommandHandle } from './types.js'

export { ClicktraceError } from './errors.js'
export type { CommandSpec, StoreClicktraceOptions, StoreCommands } from './plugin.js'
export { createClicktrace } from './plugin.js'
export type { Mutation } from './rebase.js'
export { type SetupStoreCommands, type SetupStoreOptions, useCommands } from './setupStore.js'
export { type SocketIoOptions, socketIoTransport } from './transport/socketio.js'
export type { Connection, ConnectionStatus, Hello, Transport, TransportHandlers } from './transport/types.js'
export { type WebSocketOptions, webSocketTransport } from './transport/websocket.js'
export type {
  ClicktraceOptions,
  CommandError,
  CommandHandle,
  CommandOutcome,
  CommandRecord,
  CommandRequest,
  CommandStatus,
} from './types.js'

declare module 'pinia' {
  export interface DefineStoreOptionsBase<S extends StateTree, Store> {
    /** clicktrace settings for this store (resync hook, managed keys, deadline). */
    clicktrace?: StoreClicktraceOptions<S, Store>
  }

  export interface PiniaCustomProperties<
    Id extends string = string,
    S extends StateTree = StateTree,
    G = _GettersTree<S>,
    A = _ActionsTree,
  > {
    /**
     * Apply an optimistic change and send a command: mints the correlation id and traceparent
     * now, settles on the matching notification, an HTTP error, or the deadline.
     */
    $command<D = unknown, Self extends { $state: unknown } = { $state: UnwrapRef<S> }>(
      this: Self,
      spec: CommandSpec<Self['$state'], D>,
    ): CommandHandle<D>
    /** Write authoritative state (e.g. loaded over HTTP); pending optimistic changes stay on top. */
    $authoritative<Self extends { $state: unknown } = { $state: UnwrapRef<S> }>(this: Self, fn: Mutation<Self['$state']>): void
    /** Receive `topic`'s live updates in this store (as `clicktrace.topics` does); returns the unwatch. */
    $watchTopic(topic: string): () => void
    /** Reactive command state of this store. */
    readonly $clicktrace: StoreCommands
  }
}
