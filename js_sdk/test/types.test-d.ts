// Type-level tests: the store option and the action API, as a user writes them.
import { defineStore } from 'pinia'
import { describe, expectTypeOf, it } from 'vitest'
import type { CommandHandle, CommandOutcome, CommandRecord, StoreCommands } from '../src/index.js'

interface Product { id: number; name: string; price: number; version: number }

// The README's store, verbatim in substance.
const useProducts = defineStore('products', {
  state: () => ({ products: [] as Product[], loading: false }),
  actions: {
    async load() {
      const list = (await (await fetch('/api/products')).json()) as Product[]
      this.$authoritative((s) => {
        expectTypeOf(s.products).toEqualTypeOf<Product[]>()
        s.products = list
      })
    },
    rename(id: number, name: string): CommandHandle<Product> {
      return this.$command({
        url: `/api/products/${id}/rename`,
        body: { name },
        entity: id,
        optimistic: (s) => {
          const p = s.products.find((p) => p.id === id)
          if (p) p.name = name
        },
        authoritative: (s, data: Product) => {
          s.products[0] = data
        },
      })
    },
    untyped(): void {
      // @ts-expect-error the state is typed: name is a string
      this.$command({ url: '/x', optimistic: (s) => { s.products[0]!.name = 1 } })
      // @ts-expect-error no such state key
      this.$authoritative((s) => { s.nope = 1 })
      // @ts-expect-error url is required
      this.$command({ optimistic: () => {} })
    },
  },
  clicktrace: {
    resync() {
      expectTypeOf(this.load).toEqualTypeOf<() => Promise<void>>()
      return this.load()
    },
    keys: ['products'],
    deadlineMs: 5000,
  },
})

describe('store API types', () => {
  it('returns a typed handle and exposes reactive command state', () => {
    const store = useProducts()
    expectTypeOf(store.rename).returns.toEqualTypeOf<CommandHandle<Product>>()
    expectTypeOf(store.rename(1, 'x').settled).toEqualTypeOf<Promise<CommandOutcome<Product>>>()
    expectTypeOf(store.rename(1, 'x').record.data).toEqualTypeOf<Product | undefined>()
    expectTypeOf(store.$clicktrace).toEqualTypeOf<StoreCommands>()
    expectTypeOf(store.$clicktrace.entity(1)).toEqualTypeOf<CommandRecord | undefined>()
    expectTypeOf(store.rename(1, 'x').status).toEqualTypeOf<'pending' | 'confirmed' | 'rejected' | 'timed_out'>()
  })

  it('rejects unknown state keys and wrong option types in the store option', () => {
    // @ts-expect-error `b` is not a state key (reported on the overloaded call)
    defineStore('bad', {
      state: () => ({ a: 1 }),
      clicktrace: { keys: ['b'] },
    })
    // @ts-expect-error deadlineMs is a number
    defineStore('bad2', {
      state: () => ({ a: 1 }),
      clicktrace: { deadlineMs: '5s' },
    })
  })

  it('works from outside a store with the store type', () => {
    const store = useProducts()
    const h = store.$command({ url: '/x', optimistic: (s) => { s.loading = true } })
    expectTypeOf(h).toEqualTypeOf<CommandHandle<unknown>>()
  })
})
