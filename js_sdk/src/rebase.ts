// The rebase model for optimistic updates (instead of snapshot-and-restore, which clobbers a
// second pending change to the same entity): the view is always the last authoritative state
// with the still-pending optimistic mutations replayed on top, in the order they were made.

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
   * Settle mutation `id`. `authoritative` (the server's data) is written into the base; when it
   * is absent and `keep` is true the optimistic mutation itself becomes authoritative (a
   * confirmation without data). Rejections and timeouts pass neither: the mutation is dropped.
   * `fn` stands in for a mutation that already left (a late confirmation after a timeout).
   */
  settle(id: string, authoritative?: Mutation<S>, keep?: boolean, fn?: Mutation<S>): void
  /** Write authoritative state (e.g. a list loaded over HTTP); pending mutations stay on top. */
  authoritative(fn: Mutation<S>): void
}

export function rebase<S>(target: RebaseTarget<S>): Rebase<S> {
  // Only kept while something is pending; otherwise the live state is the authoritative one.
  let base: S | undefined
  const pending: Array<{ id: string; fn: Mutation<S> }> = []

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
    settle(id, authoritative, keep = false, fn) {
      const i = pending.findIndex((p) => p.id === id)
      const own = i >= 0 ? pending.splice(i, 1)[0]!.fn : fn
      const commit = authoritative ?? (keep ? own : undefined)
      if (i >= 0 || commit) rebuild(commit)
    },
    authoritative: rebuild,
  }
}
