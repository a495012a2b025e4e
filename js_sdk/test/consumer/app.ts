// What a user's app writes, against the built package (see tsconfig.json beside this file).

import { type CommandHandle, type ConnectionStatus, createClicktrace, socketIoTransport, webSocketTransport } from 'clicktrace-pinia'
import { type ClicktraceClient, createClient, parseTraceparent, rebase } from 'clicktrace-pinia/core'
import { otelTracing } from 'clicktrace-pinia/otel'
import { exposeTestHook, memoryFetch, memoryTransport } from 'clicktrace-pinia/testing'
import { createPinia, defineStore } from 'pinia'

interface Todo {
  id: number
  title: string
}

export const useTodos = defineStore('todos', {
  state: () => ({ todos: [] as Todo[] }),
  actions: {
    rename(id: number, title: string): CommandHandle<Todo> {
      return this.$command({
        url: `/api/todos/${id}`,
        body: { title },
        entity: id,
        optimistic: (s) => {
          const t = s.todos.find((x) => x.id === id)
          if (t) t.title = title
        },
        authoritative: (s, data: Todo) => {
          s.todos = s.todos.map((t) => (t.id === data.id ? data : t))
        },
      })
    },
  },
  clicktrace: {
    keys: ['todos'],
    resync() {
      return undefined
    },
  },
})

const pinia = createPinia()
pinia.use(createClicktrace({ transport: socketIoTransport(), testHook: exposeTestHook() }))
export const status: ConnectionStatus = useTodos(pinia).$clicktrace.connection
export const ws = webSocketTransport({ url: '/clicktrace/ws' })
export const client: ClicktraceClient = createClient({ transport: memoryTransport(), fetch: memoryFetch().fetch })
export const model = rebase<{ n: number }>({ snapshot: () => ({ n: 0 }), clone: (s) => ({ ...s }), mutate: () => {}, replace: () => {} })
export const traceId: string | undefined = parseTraceparent(client.toString())?.traceId
export const tracing = () => otelTracing()
