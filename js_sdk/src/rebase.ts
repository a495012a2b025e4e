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

export class Rebase<S> {
  // Only kept while something is pending; otherwise the live state is the authoritative one.
  private base: S | undefined
  private readonly pending: Array<{ id: string; fn: Mutation<S> }> = []

  constructor(private readonly target: RebaseTarget<S>) {}

  get pendingIds(): string[] {
    return this.pending.map((p) => p.id)
  }

  /** Apply an optimistic mutation now and remember it until it settles. */
  apply(id: string, fn: Mutation<S>): void {
    if (this.base === undefined) this.base = this.target.snapshot()
    this.pending.push({ id, fn })
    this.target.mutate(fn)
  }

  /**
   * Settle mutation `id`. `authoritative` (the server's data) is written into the base; when it
   * is absent and `keep` is true the optimistic mutation itself becomes authoritative (a
   * confirmation without data). Rejections and timeouts pass neither and the mutation is dropped.
   * Works for ids that already left the pending list (a late confirmation after a timeout).
   */
  settle(id: string, authoritative?: Mutation<S>, keep = false, fn?: Mutation<S>): void {
    const i = this.pending.findIndex((p) => p.id === id)
    const own = i >= 0 ? this.pending.splice(i, 1)[0]!.fn : fn
    const commit = authoritative ?? (keep ? own : undefined)
    if (i < 0 && !commit) return
    this.rebuild(commit)
  }

  /** Write authoritative state (e.g. a list loaded over HTTP); pending mutations stay on top. */
  authoritative(fn: Mutation<S>): void {
    if (this.base === undefined) this.target.mutate(fn)
    else this.rebuild(fn)
  }

  private rebuild(commit: Mutation<S> | undefined): void {
    if (this.base === undefined) {
      // Nothing pending: the live state is the base.
      if (commit) this.target.mutate(commit)
      return
    }
    if (commit) commit(this.base)
    const next = this.target.clone(this.base)
    for (const p of this.pending) p.fn(next)
    if (this.pending.length === 0) this.base = undefined
    this.target.replace(next)
  }
}
