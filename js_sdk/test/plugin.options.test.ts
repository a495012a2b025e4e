// Per-store options resolved as per-store ?? global ?? default, managed keys, retention,
// several stores on one client, and a component bound to the reactive state.
import { createPinia, defineStore, setActivePinia } from 'pinia'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { type Component, createApp, defineComponent, h, nextTick, ref } from 'vue'
import { type ClicktraceOptions, type CommandHandle, createClicktrace } from '../src/index.js'
import { MemoryTransport, memoryFetch } from '../src/testing/index.js'
import { flush } from './harness.js'

function app(options: Partial<ClicktraceOptions> = {}, root: Component = { render: () => null }) {
  const transport = new MemoryTransport()
  const net = memoryFetch()
  const pinia = createPinia()
  pinia.use(createClicktrace({ transport, fetch: net.fetch, tracesUrl: false, ...options }))
  const vueApp = createApp(root).use(pinia)
  setActivePinia(pinia)
  return { transport, net, pinia, vueApp }
}

const useNotes = defineStore('notes', {
  state: () => ({ notes: [] as string[], draft: '' }),
  actions: {
    add(text: string, deadlineMs?: number): CommandHandle {
      return this.$command({
        url: '/api/notes',
        body: { text },
        entity: 'notes',
        ...(deadlineMs ? { deadlineMs } : {}),
        optimistic: (s) => {
          s.notes.push(text)
        },
      })
    },
  },
  clicktrace: { keys: ['notes'], deadlineMs: 2000, keepSettled: 2 },
})

const useCounter = defineStore('counter', {
  state: () => ({ n: 0 }),
  actions: {
    inc(): CommandHandle {
      return this.$command({
        url: '/api/inc',
        optimistic: (s) => {
          s.n++
        },
      })
    },
  },
})

describe('store options', () => {
  beforeEach(() => vi.useFakeTimers())
  afterEach(() => vi.useRealTimers())

  it('resolves the deadline per command ?? per store ?? global ?? default', async () => {
    const { net } = app({ deadlineMs: 7000 })
    const notes = useNotes()
    const counter = useCounter()
    notes.add('a', 500)
    notes.add('b')
    counter.inc()
    await flush()
    const deadlines = net.commands().map((c) => (c.body!.metadata as { deadline: number }).deadline - Date.now())
    expect(deadlines).toEqual([500, 2000, 7000])
  })

  it('uses the 15 s default deadline without any setting', async () => {
    const { net } = app()
    const h = useCounter().inc()
    await flush()
    expect((net.commands()[0]!.body!.metadata as { deadline: number }).deadline).toBe(Date.now() + 15_000)
    vi.advanceTimersByTime(14_999)
    expect(h.status).toBe('pending')
    vi.advanceTimersByTime(1)
    expect(h.status).toBe('timed_out')
  })

  it('rebases only the managed keys, leaving local UI state alone', async () => {
    const { transport } = app()
    const notes = useNotes()
    const a = notes.add('a')
    notes.add('b')
    notes.draft = 'typing…'
    await flush()
    transport.notify({ correlation_id: a.correlationId, status: 'rejected', error: { code: 'x', message: '' } })
    expect(notes.notes).toEqual(['b'])
    expect(notes.draft).toBe('typing…')
  })

  it('keeps every pending command and only the latest settled ones', async () => {
    const { transport } = app()
    const notes = useNotes()
    const hs = ['a', 'b', 'c', 'd', 'e'].map((t) => notes.add(t))
    await flush()
    for (const h of hs.slice(0, 4)) transport.notify({ correlation_id: h.correlationId, status: 'confirmed' })
    expect(notes.$clicktrace.commands.map((r) => r.correlationId)).toEqual([hs[2], hs[3], hs[4]].map((h) => h!.correlationId))
    expect(notes.$clicktrace.pending.map((r) => r.correlationId)).toEqual([hs[4]!.correlationId])
    expect(notes.$clicktrace.last?.correlationId).toBe(hs[4]!.correlationId)
    expect(notes.notes).toEqual(['a', 'b', 'c', 'd', 'e'])
  })

  it('keeps a late-confirmed change that came without data', async () => {
    const { transport } = app()
    const notes = useNotes()
    const h = notes.add('late')
    await flush()
    vi.advanceTimersByTime(2000)
    expect(notes.notes).toEqual([])
    transport.notify({ correlation_id: h.correlationId, status: 'confirmed' })
    expect(notes.notes).toEqual(['late'])
  })

  it('shares one session and one connection between stores; per-store state stays separate', async () => {
    const { net, transport } = app()
    const notes = useNotes()
    const counter = useCounter()
    notes.add('x')
    const c = counter.inc()
    await flush()
    expect(net.sent.filter((s) => s.url === '/clicktrace/session')).toHaveLength(1)
    expect(transport.hellos).toHaveLength(1)
    expect(counter.$clicktrace.commands).toHaveLength(1)
    expect(notes.$clicktrace.isPending()).toBe(true)
    expect(notes.$clicktrace.isPending('notes')).toBe(true)
    expect(counter.$clicktrace.isPending('notes')).toBe(false)
    expect(counter.$clicktrace.connection).toBe('connected')
    transport.notify({ correlation_id: c.correlationId, status: 'confirmed' })
    expect(counter.n).toBe(1)
    expect(counter.$clicktrace.entity('nothing')).toBeUndefined()
  })

  it('throws a failing optimistic change to the caller and sends nothing', async () => {
    const { net } = app()
    const notes = useNotes()
    expect(() =>
      notes.$command({
        url: '/api/notes',
        optimistic: () => {
          throw new Error('bug')
        },
      }),
    ).toThrow('bug')
    await flush()
    expect(net.sent).toHaveLength(0)
    expect(notes.$clicktrace.commands).toHaveLength(0)
  })

  it('works from a setup store through the store instance', async () => {
    const { transport, net } = app()
    const useTodos = defineStore(
      'todos',
      () => {
        const items = ref<string[]>([])
        function add(text: string): CommandHandle {
          return useTodos().$command({
            url: '/api/todos',
            body: { text },
            optimistic: (s) => {
              s.items.push(text)
            },
          })
        }
        return { items, add }
      },
      { clicktrace: { deadlineMs: 1234 } },
    )
    const todos = useTodos()
    const h = todos.add('x')
    expect(todos.items).toEqual(['x'])
    await flush()
    expect((net.commands()[0]!.body!.metadata as { deadline: number }).deadline).toBe(Date.now() + 1234)
    transport.notify({ correlation_id: h.correlationId, status: 'rejected', error: { code: 'no', message: '' } })
    expect(todos.items).toEqual([])
  })

  it('drives a component: pending at once, then the outcome and the reference', async () => {
    const Comp = defineComponent(() => {
      const notes = useNotes()
      return () =>
        h('div', [
          h(
            'ul',
            notes.notes.map((n) => h('li', n)),
          ),
          h(
            'p',
            { id: 'status' },
            notes.$clicktrace.last
              ? `${notes.$clicktrace.last.status} ${notes.$clicktrace.last.error?.code ?? ''} ${notes.$clicktrace.last.correlationId}`
              : 'idle',
          ),
        ])
    })
    const { transport, vueApp } = app({}, Comp)
    const el = document.createElement('div')
    vueApp.mount(el)
    expect(el.querySelector('#status')!.textContent).toBe('idle')
    const notes = useNotes()
    const a = notes.add('hello')
    await nextTick()
    expect(el.querySelectorAll('li')).toHaveLength(1)
    expect(el.querySelector('#status')!.textContent).toBe(`pending  ${a.correlationId}`)
    await flush()
    transport.notify({ correlation_id: a.correlationId, status: 'rejected', error: { code: 'too_long', message: '' } })
    await nextTick()
    expect(el.querySelectorAll('li')).toHaveLength(0)
    expect(el.querySelector('#status')!.textContent).toBe(`rejected too_long ${a.correlationId}`)
    vueApp.unmount()
  })
})
