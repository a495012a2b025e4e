// What a user's app writes, against the built package (see tsconfig.json beside this file).

import {
  type CommandHandle,
  type ConnectionStatus,
  createClicktrace,
  socketIoTransport,
  useCommands,
  webSocketTransport,
} from 'clicktrace-pinia'
import { type ClicktraceClient, createClient, parseTraceparent, rebase } from 'clicktrace-pinia/core'
import { otelTracing } from 'clicktrace-pinia/otel'
import { exposeTestHook, memoryFetch, memoryTransport } from 'clicktrace-pinia/testing'
import { createPinia, defineStore } from 'pinia'
import { ref } from 'vue'

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

// A setup store, without a single annotation beyond its refs' types: no TS7022/TS7023/TS7006.
export const useSeats = defineStore('seats', () => {
  const seats = ref<Array<{ id: number; holder: string | null }>>([])
  const { command, authoritative, commands } = useCommands({ seats }, { resync: load })
  async function load() {
    const list = (await (await fetch('/api/seats')).json()) as typeof seats.value
    authoritative((s) => {
      s.seats = list
    })
  }
  function hold(id: number, who: string) {
    return command({
      url: `/api/seats/${id}/hold`,
      entity: id,
      optimistic: (s) => {
        const seat = s.seats.find((x) => x.id === id)
        if (seat) seat.holder = who
      },
      authoritative: (s, data: { id: number; holder: string | null }) => {
        s.seats = s.seats.map((x) => (x.id === data.id ? data : x))
      },
    })
  }
  return { seats, commands, load, hold }
})

const pinia = createPinia()
pinia.use(createClicktrace({ transport: socketIoTransport(), testHook: exposeTestHook() }))
export const status: ConnectionStatus = useTodos(pinia).$clicktrace.connection
export const ws = webSocketTransport({ url: '/clicktrace/ws' })
export const client: ClicktraceClient = createClient({ transport: memoryTransport(), fetch: memoryFetch().fetch })
export const model = rebase<{ n: number }>({ snapshot: () => ({ n: 0 }), clone: (s) => ({ ...s }), mutate: () => {}, replace: () => {} })
export const traceId: string | undefined = parseTraceparent(client.toString())?.traceId
export const tracing = () => otelTracing()
export const seatHandle: CommandHandle<{ id: number; holder: string | null }> = useSeats(pinia).hold(1, 'ann')
export const seatsPending: boolean = useSeats(pinia).commands.isPending(1)
export const reload: Promise<void> = useSeats(pinia).load()
