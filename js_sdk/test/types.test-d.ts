// Type-level tests: the store option and the action API, as a user writes them.
import { defineStore } from 'pinia'
import { describe, expectTypeOf, it } from 'vitest'
import { ref } from 'vue'
import {
  type ClicktraceOptions,
  type CommandHandle,
  type CommandOutcome,
  type CommandRecord,
  type CommandStatus,
  type ConnectionStatus,
  createClicktrace,
  type Hello,
  type StoreCommands,
  type Transport,
  useCommands,
} from '../src/index.js'

interface Product {
  id: number
  name: string
  price: number
  version: number
}

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
      this.$command({
        url: '/x',
        optimistic: (s) => {
          // @ts-expect-error the state is typed: name is a string
          s.products[0]!.name = 1
        },
      })
      this.$authoritative((s) => {
        // @ts-expect-error no such state key
        s.nope = 1
      })
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
    const h = store.$command({
      url: '/x',
      optimistic: (s) => {
        s.loading = true
      },
    })
    expectTypeOf(h).toEqualTypeOf<CommandHandle<unknown>>()
  })
})

describe('live updates', () => {
  it('types the topics, the live hook on the state and $watchTopic', () => {
    const useSeats = defineStore('seats', {
      state: () => ({ seats: [] as Array<{ id: number; holder: string | null }> }),
      clicktrace: {
        topics: ['seats'],
        // A method: the update's data may be typed where it is written.
        live(state, seat: { id: number; holder: string | null }, topic) {
          expectTypeOf(state.seats).toEqualTypeOf<Array<{ id: number; holder: string | null }>>()
          expectTypeOf(topic).toEqualTypeOf<string>()
          state.seats.push(seat)
        },
      },
    })
    const seats = useSeats()
    expectTypeOf(seats.$watchTopic('seats:hall-b')).toEqualTypeOf<() => void>()
    // @ts-expect-error topics are names
    defineStore('bad', { state: () => ({}), clicktrace: { topics: [1] } })
    // @ts-expect-error live writes into this store's state
    defineStore('bad2', { state: () => ({ n: 0 }), clicktrace: { live: (s: { m: string }) => s } })
  })
})

describe('setup stores, options and extension points', () => {
  it('types setup stores: per-store options as the third argument, $command on the instance', () => {
    const useTodos = defineStore(
      'todos',
      () => {
        const items = ref<string[]>([])
        return { items }
      },
      {
        clicktrace: { keys: ['items'], resync: (store) => expectTypeOf(store.items).toEqualTypeOf<string[]>() },
      },
    )
    const todos = useTodos()
    todos.$command({
      url: '/x',
      optimistic: (s) => {
        expectTypeOf(s.items).toEqualTypeOf<string[]>()
      },
    })
  })

  it('accepts the plugin options and a custom transport', () => {
    const transport: Transport = {
      connect(h) {
        expectTypeOf(h.hello()).toEqualTypeOf<Hello>()
        h.state('connected')
        h.message({ seq: 1 })
        return () => {}
      },
    }
    expectTypeOf(createClicktrace).parameter(0).toEqualTypeOf<ClicktraceOptions>()
    createClicktrace({
      transport,
      propagateTo: ['https://api.example', /^https:\/\/cdn\.example\//],
      deadlineMs: 5000,
      sampleRate: 0.25,
      tracesUrl: false,
      onStatus: (r) => expectTypeOf(r.status).toEqualTypeOf<CommandStatus>(),
      onError: (e) => expectTypeOf(e).toBeUnknown(),
    })
    // @ts-expect-error not a transport
    createClicktrace({ transport: 'carrier-pigeon' })
    // @ts-expect-error propagateTo takes origins or patterns
    createClicktrace({ transport, propagateTo: [42] })
    // @ts-expect-error a transport is chosen by import: there is no default to bundle
    createClicktrace({})
  })

  it('keeps command state read-only for components', () => {
    const store = useProducts()
    // @ts-expect-error $clicktrace is not assignable
    store.$clicktrace = useProducts().$clicktrace
    // @ts-expect-error the list is read-only
    store.$clicktrace.commands.push(store.$clicktrace.commands[0]!)
    expectTypeOf(store.$clicktrace.connection).toEqualTypeOf<ConnectionStatus>()
  })

  it('types a setup store from the refs it names, with no annotations', () => {
    const useSeats = defineStore('seats', () => {
      const seats = ref<Array<{ id: number; holder: string | null }>>([])
      const { command, authoritative, commands } = useCommands({ seats }, { resync: load })
      function load() {
        authoritative((s) => {
          expectTypeOf(s.seats).toEqualTypeOf<Array<{ id: number; holder: string | null }>>()
          // @ts-expect-error only the refs it was given
          s.other = 1
        })
      }
      function hold(id: number) {
        return command({
          url: `/api/seats/${id}/hold`,
          optimistic: (s) => {
            // @ts-expect-error holder is a string or null
            s.seats[0]!.holder = 1
          },
          authoritative: (_s, data: { id: number }) => expectTypeOf(data.id).toBeNumber(),
        })
      }
      return { seats, commands, load, hold }
    })
    const store = useSeats()
    expectTypeOf(store.hold).returns.toEqualTypeOf<CommandHandle<{ id: number }>>()
    expectTypeOf(store.commands).toEqualTypeOf<StoreCommands>()
    expectTypeOf(store.load).toEqualTypeOf<() => void>()
    // @ts-expect-error resync takes no store argument: it closes over the setup function's own
    useCommands({ seats: ref([]) }, { resync: (store: string) => store })
  })
})
