// The rebase model for optimistic updates (instead of snapshot-and-restore, which clobbers a
// second pending change to the same entity): the view is always the last authoritative state
// with the still-pending optimistic mutations replayed on top, in the order they were made.
// State copies for it: plain objects and arrays copied, anything else shared.

export type Mutation<S> = (state: S) => void

export interface RebaseTarget<S> {
  /** A detached deep copy of the live state. */
  snapshot(): S
  /** Mutate the live state in place (one batched write). */
  mutate(fn: Mutation<S>): void
  /** Replace the live state with `next`. */
  replace(next: S): void
  /** A detached deep copy of `state`. */
  clone(state: S): S
}

export interface Rebase<S> {
  /** Ids of the pending mutations, oldest first. */
  pending(): string[]
  /** Apply an optimistic mutation now and remember it until it settles. */
  apply(id: string, fn: Mutation<S>): void
  /**
   * Mutation `id` was confirmed: `write` (the server's data) goes into the base; without it the
   * optimistic mutation itself becomes authoritative. `mutation` stands in for one that already
   * left (a late confirmation after a timeout dropped it).
   */
  confirm(id: string, confirmed?: { write?: Mutation<S> | undefined; mutation?: Mutation<S> | undefined }): void
  /** Mutation `id` was rejected or timed out: it leaves the view; `write` is authoritative
   * state that came with the rejection. */
  drop(id: string, write?: Mutation<S>): void
  /** Write authoritative state (e.g. a list loaded over HTTP); pending mutations stay on top. */
  authoritative(fn: Mutation<S>): void
}

export function rebase<S>(target: RebaseTarget<S>): Rebase<S> {
  // Only kept while something is pending; otherwise the live state is the authoritative one.
  let base: S | undefined
  const pending: Array<{ id: string; fn: Mutation<S> }> = []

  // Remove mutation `id` from the pending list; its function, or undefined when it is not there.
  const take = (id: string): Mutation<S> | undefined => {
    const i = pending.findIndex((p) => p.id === id)
    return i < 0 ? undefined : pending.splice(i, 1)[0]!.fn
  }

  function rebuild(commit: Mutation<S> | undefined): void {
    if (base === undefined) {
      if (commit) target.mutate(commit)
      return
    }
    if (commit) commit(base)
    const next = target.clone(base)
    for (const p of pending) {
      try {
        p.fn(next)
      } catch {
        // It no longer applies to the newer authoritative state (e.g. its entity is gone):
        // leave it out of the view; it still settles normally.
      }
    }
    if (pending.length === 0) base = undefined
    target.replace(next)
  }

  return {
    pending: () => pending.map((p) => p.id),
    apply(id, fn) {
      base ??= target.snapshot()
      try {
        target.mutate(fn)
      } catch (e) {
        rebuild(undefined) // undo a half-applied change
        throw e
      }
      pending.push({ id, fn })
    },
    confirm(id, { write, mutation } = {}) {
      const own = take(id)
      const commit = write ?? own ?? mutation
      if (own || commit) rebuild(commit)
    },
    drop(id, write) {
      if (take(id) || write) rebuild(write)
    },
    authoritative: rebuild,
  }
}

/** Deep copy of plain objects and arrays, read through Vue proxies; other values are shared. */
export function clonePlain<T>(value: T): T {
  if (Array.isArray(value)) return value.map(clonePlain) as T
  if (value !== null && typeof value === 'object') {
    const proto = Object.getPrototypeOf(value) as unknown
    if (proto === Object.prototype || proto === null) {
      const out: Record<string, unknown> = {}
      for (const k of Object.keys(value)) out[k] = clonePlain((value as Record<string, unknown>)[k])
      return out as T
    }
  }
  return value
}
