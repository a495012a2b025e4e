import { defineStore } from 'pinia'
import type { CommandHandle } from 'clicktrace-pinia'

export interface Todo { id: string; title: string }

// Idempotent: the tab that added a todo hears of it twice (its confirmation, the live update).
const put = (list: Todo[], todo: Todo) => { if (!list.some((t) => t.id === todo.id)) list.push(todo) }

export const useTodos = defineStore('todos', {
  state: () => ({ todos: [] as Todo[] }),
  actions: {
    async load() {
      const list = (await (await fetch('/api/todos')).json()) as Todo[]
      this.$authoritative((s) => { s.todos = list })
    },
    add(title: string): CommandHandle<Todo> {
      return this.$command({
        url: '/api/todos',
        body: { title },
        name: 'add todo',
        // Replayed on every newer state while pending: shown until the real one arrives.
        optimistic: (s) => { if (!s.todos.some((t) => t.title === title)) s.todos.push({ id: 'pending', title }) },
        authoritative: (s, todo: Todo) => put(s.todos, todo),
      })
    },
  },
  clicktrace: {
    topics: ['todos'], // every tab's new todos, live
    live(s, todo: Todo) { put(s.todos, todo) },
    resync() { return this.load() },
  },
})
