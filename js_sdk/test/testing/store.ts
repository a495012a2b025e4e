// A store under test as a user's vitest suite would set it up with `clicktrace-pinia/testing`:
// the in-memory transport and fetch, and, when asked, the opt-in window test hook.
import { createPinia, defineStore, setActivePinia } from 'pinia'
import { createApp } from 'vue'
import { createClicktrace } from '../../src/index.js'
import { exposeTestHook, memoryFetch, memoryTransport } from '../../src/testing/index.js'

export const useTodos = defineStore('todos', {
  state: () => ({ titles: ['milk'] }),
  actions: {
    add(title: string) {
      return this.$command({
        url: '/api/todos',
        body: { title },
        name: 'add',
        optimistic: (s) => void s.titles.push(title),
        authoritative: (s, data: string[]) => {
          s.titles = data
        },
      })
    },
  },
})

/** `testHook`: undefined for none, '' for the default name, else the name. */
export function setup(testHook?: string) {
  const transport = memoryTransport()
  const server = memoryFetch()
  const pinia = createPinia()
  pinia.use(
    createClicktrace({
      transport,
      fetch: server.fetch,
      ...(testHook === undefined ? { tracesUrl: false } : { testHook: exposeTestHook(testHook || undefined) }),
    }),
  )
  createApp({}).use(pinia)
  setActivePinia(pinia)
  return { transport, server, store: useTodos() }
}
