import { defineStore } from 'pinia'
import type { CommandHandle } from 'clicktrace-pinia'

export interface Product { id: number; name: string; price: number; version: number }

export const useProducts = defineStore('products', {
  state: () => ({ products: [] as Product[], loaded: false }),
  actions: {
    async load(): Promise<void> {
      const reply = await fetch('/api/products')
      const list = (await reply.json()) as Product[]
      this.$authoritative((s) => { s.products = list })
      this.loaded = true
    },
    rename(id: number, name: string): CommandHandle<Product> {
      return this.$command({
        url: `/api/products/${id}/rename`,
        body: { name },
        name: 'rename product',
        entity: id,
        optimistic: (s) => {
          const product = s.products.find((p) => p.id === id)
          if (product) product.name = name
        },
        authoritative: (s, data: Product) => {
          const i = s.products.findIndex((p) => p.id === data.id)
          if (i >= 0) s.products[i] = data
        },
      })
    },
  },
  clicktrace: {
    resync() { return this.load() },
    keys: ['products'],
    // Every tab's renames, live (the projection publishes each; versions per product id).
    topics: ['catalogue'],
    live(s, data: Product) {
      const i = s.products.findIndex((p) => p.id === data.id)
      if (i >= 0) s.products[i] = data
    },
  },
})
