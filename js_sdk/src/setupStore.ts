// Setup stores (`defineStore(id, () => {...})`): `useCommands(refs)` gives the setup function
// what an options store has on `this` — command, authoritative, the reactive command state —
// over the refs it names, typed from them. Nothing refers to the store being defined, so
// TypeScript infers the store without annotations (an action calling `useX().$command(...)`
// inside `useX`'s own setup is a circular inference: TS7022/TS7023). It binds through the
// pinia's clicktrace plugin, as that plugin binds a store, right after the setup function.
import { getActivePinia, type PiniaPluginContext } from 'pinia'
import { type ComputedRef, computed, reactive, type UnwrapNestedRefs } from 'vue'
import { type CommandSpec, plugins, type StoreCommands } from './plugin.js'
import type { Mutation } from './rebase.js'
import type { CommandHandle } from './types.js'

/** Per-store options of a setup store (an options store's `clicktrace: {...}`). */
export interface SetupStoreOptions<S = Record<string, unknown>> {
  /** Reload authoritative state when the server cannot replay missed notifications. */
  resync?: () => unknown
  deadlineMs?: number
  keepSettled?: number
  /** Topics this store shows: their updates (`notifier.publish`) reach it live, from every tab. */
  topics?: string[]
  /** Write a topic update's `data` into the state (default: its keys replace the state's). */
  live?: (state: S, data: unknown, topic: string) => void
}

export interface SetupStoreCommands<S> {
  /** An options store's `this.$command`: optimistic change now, settled by the notification. */
  command<D = unknown>(spec: CommandSpec<S, D>): CommandHandle<D>
  /** An options store's `this.$authoritative`: pending optimistic changes stay on top. */
  authoritative(fn: Mutation<S>): void
  /** An options store's `$clicktrace`; return it from the setup function to show it. */
  commands: ComputedRef<StoreCommands>
  /** An options store's `this.$watchTopic`: a topic known later; returns the unwatch. */
  watchTopic(topic: string): () => void
}

type Bound = ReturnType<ReturnType<typeof plugins.get> & object>

/**
 * Commands over `state` (an object of the setup store's refs, e.g. `{ seats }`): mutations get
 * those refs unwrapped (`s.seats` is the array). Call it in the setup function; use what it
 * returns in actions (after the setup function has run).
 */
export function useCommands<T extends object>(
  state: T,
  options: SetupStoreOptions<UnwrapNestedRefs<T>> = {},
): SetupStoreCommands<UnwrapNestedRefs<T>> {
  const pinia = getActivePinia()
  const live = reactive(state) as Record<string, unknown>
  const store = { $state: live, $patch: (fn: (s: Record<string, unknown>) => void) => fn(live) }
  let bound: Bound | undefined
  const bind = (): Bound => {
    const plugin = pinia && plugins.get(pinia)
    if (!plugin)
      throw new TypeError(
        'clicktrace: useCommands() found no clicktrace plugin: pinia.use(createClicktrace(...)), then use it after the setup function',
      )
    bound ??= plugin({ pinia, store, options: { clicktrace: options } } as unknown as PiniaPluginContext)
    return bound
  }
  // The plugin runs for the store right after its setup function: bind then, so `resync` is
  // heard before the store's first command.
  queueMicrotask(() => pinia && plugins.has(pinia) && bind())
  return {
    command: <D>(spec: CommandSpec<UnwrapNestedRefs<T>, D>) => bind().$command<D>(spec as CommandSpec<Record<string, unknown>, D>),
    authoritative: (fn) => bind().$authoritative(fn as Mutation<Record<string, unknown>>),
    commands: computed(() => bind().$clicktrace),
    watchTopic: (topic) => bind().$watchTopic(topic),
  }
}
