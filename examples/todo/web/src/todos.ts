import { defineStore } from 'pinia'
import type { CommandHandle } from 'clicktrace-pinia'

export interface Todo { id: string; title: string }

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
        optimistic: (s) => { s.todos.push({ id: 'pending', title }) },
        authoritative: (s, todo: Todo) => { s.todos.push(todo) },
      })
    },
  },
  clicktrace: {
    resync() { return this.load() },
  },
})
