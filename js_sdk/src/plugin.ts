// The Pinia glue: one client per plugin, per-store options resolved once
// (per-store ?? global ?? default), a Rebase over the store's state, reactive records.
import type { Pinia, PiniaPluginContext, StateTree } from 'pinia'
import { reactive } from 'vue'
import { createClient } from './client.js'
import { clonePlain, type Mutation, rebase as makeRebase } from './rebase.js'
import type { ConnectionStatus } from './transport/types.js'
import type { ClicktraceClient, ClicktraceOptions, CommandHandle, CommandRecord, CommandRequest } from './types.js'

/** Per-store options, under `clicktrace` in the store definition. */
export interface StoreClicktraceOptions<S extends StateTree = StateTree, Store = unknown> {
  /** Reload authoritative state when the server cannot replay missed notifications. */
  resync?: (this: Store, store: Store) => unknown
  /** State keys under the rebase model (default: all keys of the initial state). */
  keys?: Array<keyof S & string>
  deadlineMs?: number
  keepSettled?: number
  /** Topics this store shows: their updates (`notifier.publish`) reach it live, from every tab. */
  topics?: string[]
  /**
   * Write a topic update's `data` into the state (through `$authoritative`: pending optimistic
   * changes stay on top). Default: `data` is a part of the state, its keys replace the store's.
   */
  live?(this: Store, state: S, data: unknown, topic: string): void
}

/** A command from inside a store action. */
export interface CommandSpec<S, D = unknown> extends CommandRequest {
  /** The optimistic change; replayed on newer authoritative state while pending, so keep it pure. */
  optimistic?: Mutation<S>
  /**
   * Write a notification's authoritative `data` into the state: on confirmation (without it the
   * optimistic change is kept) and on a rejection that carries the current state.
   */
  authoritative?: (state: S, data: D) => void
}

/** Reactive per-store command state for components. */
export interface StoreCommands {
  /** Pending commands, then the latest settled ones; oldest first. */
  readonly commands: readonly CommandRecord[]
  readonly pending: readonly CommandRecord[]
  /** The most recent command, if any. */
  readonly last: CommandRecord | undefined
  readonly connection: ConnectionStatus
  /** The most recent command touching `entity`. */
  entity(entity: string | number): CommandRecord | undefined
  isPending(entity?: string | number): boolean
}

/** Each pinia's plugin, for `useCommands` (setup stores bind their refs through it). */
export const plugins = new WeakMap<Pinia, ReturnType<typeof createClicktrace>>()
/** Versions remembered per store (one per key seen), for live updates. */
export const MAX_VERSIONS = 10_000

export function createClicktrace(options: ClicktraceOptions) {
  let client: ClicktraceClient | undefined
  return function clicktracePlugin({ store, options: def, pinia }: PiniaPluginContext) {
    plugins.set(pinia, clicktracePlugin)
    const own = (def as { clicktrace?: StoreClicktraceOptions }).clicktrace ?? {}
    client ??= createClient(options, reactive as <T extends object>(t: T) => T)
    const c = client
    const keys = own.keys ?? Object.keys(store.$state)
    const keep = own.keepSettled ?? options.keepSettled ?? 20
    const rebase = makeRebase<Record<string, unknown>>({
      snapshot: () => clonePlain(store.$state as Record<string, unknown>),
      clone: clonePlain,
      mutate: (fn) => store.$patch(fn as (s: StateTree) => void),
      replace: (next) =>
        store.$patch((s: StateTree) => {
          for (const k of keys) s[k] = next[k]
        }),
    })
    const { resync } = own
    if (resync) c.onResync(() => resync.call(store, store))

    // Live updates: the newest version per key wins, whichever path (a topic update, this tab's
    // own confirmation) brings it first.
    const versions = new Map<string, number>()
    // Bounded: past MAX_VERSIONS keys the longest-known one is forgotten (its next update applies).
    const fresh = (key: string | undefined, version: number | undefined): boolean => {
      if (key === undefined || version === undefined) return true
      if (versions.get(key)! >= version) return false
      if (versions.set(key, version).size > MAX_VERSIONS) versions.delete(versions.keys().next().value!)
      return true
    }
    const live = own.live ?? ((s: Record<string, unknown>, d: unknown) => Object.assign(s, d))
    const $watchTopic = (topic: string): (() => void) =>
      c.watch(topic, (n) => {
        if (fresh(n.key ?? topic, n.version)) rebase.authoritative((s) => live.call(store, s, n.data, topic))
      })
    for (const t of own.topics ?? []) $watchTopic(t)

    const commands = reactive<CommandRecord[]>([])
    const tracker: StoreCommands = reactive({
      commands,
      get pending() {
        return commands.filter((r) => r.status === 'pending')
      },
      get last() {
        return commands.at(-1)
      },
      get connection() {
        return c.connection.status
      },
      entity(e: string | number) {
        return commands.filter((r) => r.entity === String(e)).pop()
      },
      isPending(e?: string | number) {
        return commands.some((r) => r.status === 'pending' && (e === undefined || r.entity === String(e)))
      },
    })

    // Keep every pending command and the `keep` latest settled ones.
    const prune = (): void => {
      const settled = commands.filter((r) => r.status !== 'pending')
      for (const r of settled.slice(0, settled.length - keep)) commands.splice(commands.indexOf(r), 1)
    }

    function $command<D = unknown>(spec: CommandSpec<Record<string, unknown>, D>): CommandHandle<D> {
      const { optimistic, authoritative, ...req } = spec
      let id = ''
      const handle = c.command<D>(
        { ...req, deadlineMs: req.deadlineMs ?? own.deadlineMs }, // the client falls back to the global one
        {
          optimistic: (correlationId) => {
            id = correlationId
            if (optimistic) rebase.apply(id, optimistic)
          },
          settle: (status, data, late, version, key) => {
            const write = authoritative && data !== undefined ? (s: Record<string, unknown>) => authoritative(s, data) : undefined
            // A rejection may carry the authoritative state too: take it, drop the change. A
            // confirmation older than an update already shown only drops the change.
            if (status === 'confirmed' && fresh(key, version)) rebase.confirm(id, { write, mutation: late ? optimistic : undefined })
            else rebase.drop(id, status === 'confirmed' ? undefined : write)
            prune()
          },
        },
      )
      commands.push(handle.record as CommandRecord)
      return handle
    }

    return {
      $command,
      $authoritative: rebase.authoritative,
      $watchTopic,
      $clicktrace: tracker,
    }
  }
}
