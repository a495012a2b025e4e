import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { clonePlain, type Mutation, rebase } from '../src/rebase.js'

type State = { items: Record<string, string>; log: string[] }

function target(initial: State) {
  const live = { state: clonePlain(initial), writes: 0 }
  const r = rebase<State>({
    snapshot: () => clonePlain(live.state),
    clone: clonePlain,
    mutate: (fn) => {
      fn(live.state)
      live.writes++
    },
    replace: (next) => {
      live.state = next
      live.writes++
    },
  })
  return { live, r }
}

const set =
  (k: string, v: string): Mutation<State> =>
  (s) => {
    s.items[k] = v
  }
const append =
  (v: string): Mutation<State> =>
  (s) => {
    s.log.push(v)
  }

describe('rebase', () => {
  it('drops a rejected mutation and replays the rest (no clobbering of a later change)', () => {
    const { live, r } = target({ items: { a: 'A0' }, log: [] })
    r.apply('1', set('a', 'A1'))
    r.apply('2', set('a', 'A2'))
    r.drop('1')
    expect(live.state.items.a).toBe('A2')
    r.drop('2')
    expect(live.state.items.a).toBe('A0')
    expect(r.pending()).toEqual([])
  })

  it('writes authoritative data into the base and keeps pending changes on top', () => {
    const { live, r } = target({ items: { a: 'A0', b: 'B0' }, log: [] })
    r.apply('1', set('a', 'mine'))
    r.authoritative(set('b', 'B1')) // e.g. a reload
    expect(live.state.items).toEqual({ a: 'mine', b: 'B1' })
    r.confirm('1', { write: set('a', 'server') })
    expect(live.state.items).toEqual({ a: 'server', b: 'B1' })
  })

  it('keeps the optimistic change on a confirmation without data', () => {
    const { live, r } = target({ items: {}, log: [] })
    r.apply('1', append('x'))
    r.apply('2', append('y'))
    r.confirm('1')
    expect(live.state.log).toEqual(['x', 'y'])
    r.drop('2')
    expect(live.state.log).toEqual(['x'])
  })

  it('applies a late confirmation through the mutation it is given', () => {
    const { live, r } = target({ items: {}, log: [] })
    const m = append('late')
    r.apply('1', m)
    r.drop('1') // timed out
    expect(live.state.log).toEqual([])
    r.confirm('1', { mutation: m })
    expect(live.state.log).toEqual(['late'])
    r.drop('unknown') // nothing to do, nothing written
    expect(live.state.log).toEqual(['late'])
  })

  it('writes authoritative state in place when nothing is pending', () => {
    const { live, r } = target({ items: {}, log: [] })
    const before = live.state
    r.authoritative(set('a', '1'))
    expect(live.state).toBe(before)
    expect(live.state.items.a).toBe('1')
  })

  it('leaves out a pending mutation that no longer applies, keeping the others', () => {
    const { live, r } = target({ items: { a: 'A0', b: 'B0' }, log: [] })
    r.apply('1', (s) => {
      if (!('a' in s.items)) throw new TypeError('product a is gone')
      s.items.a = 'A1'
    })
    r.apply('2', set('b', 'B1'))
    r.authoritative((s) => {
      s.items = { b: 'B0' }
    }) // a reload without `a`
    expect(live.state.items).toEqual({ b: 'B1' })
    r.drop('1')
    r.confirm('2')
    expect(live.state.items).toEqual({ b: 'B1' })
  })

  it('undoes a half-applied mutation that throws, rethrows, and does not keep it', () => {
    const { live, r } = target({ items: { a: 'A0' }, log: [] })
    r.apply('1', set('a', 'A1'))
    expect(() =>
      r.apply('2', (s) => {
        s.items.a = 'half'
        throw new Error('bug')
      }),
    ).toThrow('bug')
    expect(live.state.items.a).toBe('A1')
    expect(r.pending()).toEqual(['1'])
    r.drop('1')
    expect(live.state.items.a).toBe('A0')
  })

  // Any interleaving of authoritative writes and settlements leaves the view equal to the
  // server's state with the still-pending mutations replayed in order.
  it('ends in server state + pending mutations for any interleaving', () => {
    const op = fc.oneof(
      fc.record({ t: fc.constant('apply' as const), k: fc.constantFrom('a', 'b', 'c'), v: fc.string({ maxLength: 3 }) }),
      fc.record({ t: fc.constantFrom('confirm' as const, 'confirmNoData' as const, 'reject' as const), i: fc.nat(20) }),
      fc.record({ t: fc.constant('load' as const), k: fc.constantFrom('a', 'b', 'c'), v: fc.string({ maxLength: 3 }) }),
    )
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
        const server: State = { items: { a: '', b: '', c: '' }, log: [] }
        const { live, r } = target(server)
        const pending: Array<{ id: string; k: string; v: string }> = []
        let n = 0
        for (const o of ops) {
          if (o.t === 'apply') {
            const id = String(n++)
            pending.push({ id, k: o.k, v: o.v })
            r.apply(id, set(o.k, o.v))
          } else if (o.t === 'load') {
            server.items[o.k] = o.v
            r.authoritative(set(o.k, o.v))
          } else if (pending.length > 0) {
            const [c] = pending.splice(o.i % pending.length, 1)
            if (o.t === 'confirm') {
              server.items[c!.k] = `${c!.v}!` // the server may normalise what it stores
              r.confirm(c!.id, { write: set(c!.k, `${c!.v}!`) })
            } else if (o.t === 'confirmNoData') {
              server.items[c!.k] = c!.v
              r.confirm(c!.id)
            } else r.drop(c!.id)
          }
          const expected = clonePlain(server)
          for (const p of pending) expected.items[p.k] = p.v
          expect(live.state).toEqual(expected)
          expect(r.pending()).toEqual(pending.map((p) => p.id))
        }
      }),
      { numRuns: 300 },
    )
  })
})

describe('clonePlain', () => {
  it('copies plain objects and arrays deeply and shares other objects', () => {
    const d = new Date(0)
    const src = { a: [{ b: 1 }], d, n: null, u: undefined }
    const c = clonePlain(src)
    expect(c).toEqual(src)
    expect(c.a).not.toBe(src.a)
    expect(c.a[0]).not.toBe(src.a[0])
    expect(c.d).toBe(d)
  })
})
