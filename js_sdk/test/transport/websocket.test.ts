import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { backoffDelay, webSocketTransport } from '../../src/transport/websocket.js'
import type { ConnectionState, Hello } from '../../src/transport/types.js'

/** A scripted WebSocket: the test opens, closes and feeds frames. */
class FakeSocket {
  static all: FakeSocket[] = []
  sent: string[] = []
  closed = false
  onopen: (() => void) | null = null
  onmessage: ((ev: { data: unknown }) => void) | null = null
  onclose: ((ev: { code: number; reason: string }) => void) | null = null
  constructor(readonly url: string) {
    FakeSocket.all.push(this)
  }
  send(d: string) {
    this.sent.push(d)
  }
  close() {
    this.closed = true
    this.onclose?.({ code: 1000, reason: '' })
  }
  serverOpen() {
    this.onopen?.()
  }
  serverFrame(data: unknown) {
    this.onmessage?.({ data })
  }
  serverDrop(code = 1006, reason = '') {
    this.onclose?.({ code, reason })
  }
}

function start() {
  FakeSocket.all = []
  const messages: unknown[] = []
  const states: ConnectionState[] = []
  let hello: Hello = { token: 't', last_seq: 0 }
  const t = webSocketTransport({ WebSocket: FakeSocket as unknown as typeof WebSocket })
  const close = t.connect({ hello: () => hello, message: (m) => messages.push(m), state: (s) => states.push(s) })
  return { messages, states, close, setHello: (h: Hello) => (hello = h), sock: () => FakeSocket.all[FakeSocket.all.length - 1]! }
}

describe('webSocketTransport', () => {
  beforeEach(() => {
    vi.useFakeTimers()
    vi.spyOn(Math, 'random').mockReturnValue(0.99999) // the longest jittered delay
  })
  afterEach(() => {
    vi.useRealTimers()
    vi.restoreAllMocks()
  })

  it('connects to /clicktrace/ws on the page origin with ws:, sends the hello first, then reads JSON frames', () => {
    const { messages, states, sock } = start()
    const s = sock()
    expect(s.url).toBe(`${location.origin.replace(/^http/, 'ws')}/clicktrace/ws`)
    expect(s.sent).toEqual([])
    s.serverOpen()
    expect(s.sent.map((x) => JSON.parse(x) as unknown)).toEqual([{ token: 't', last_seq: 0 }])
    s.serverFrame('{"seq":1,"status":"confirmed"}')
    s.serverFrame('not json')
    s.serverFrame(new ArrayBuffer(2))
    expect(messages).toEqual([{ seq: 1, status: 'confirmed' }])
    expect(states).toEqual(['connecting', 'connected'])
  })

  it('reconnects after a drop with growing, capped delays and resumes from the latest seq', () => {
    const { states, sock, setHello } = start()
    sock().serverOpen()
    setHello({ token: 't', last_seq: 7 })
    const delays: number[] = []
    for (let i = 0; i < 8; i++) {
      const before = FakeSocket.all.length
      sock().serverDrop()
      let waited = 0
      while (FakeSocket.all.length === before) {
        vi.advanceTimersByTime(100)
        waited += 100
      }
      delays.push(waited)
    }
    expect(delays).toEqual([500, 1000, 2000, 4000, 8000, 10000, 10000, 10000]) // at 100 ms resolution
    expect(states.filter((s) => s === 'disconnected')).toHaveLength(8)
    sock().serverOpen()
    expect(JSON.parse(sock().sent[0]!)).toEqual({ token: 't', last_seq: 7 })
    // A successful open resets the backoff.
    const before = FakeSocket.all.length
    sock().serverDrop()
    vi.advanceTimersByTime(500)
    expect(FakeSocket.all.length).toBe(before + 1)
  })

  it('reports a refused token as rejected, other closes as disconnected', () => {
    const { states, sock } = start()
    sock().serverOpen()
    sock().serverDrop(1008, 'too_slow')
    vi.advanceTimersByTime(500)
    sock().serverDrop(1008, 'invalid_token')
    expect(states).toEqual(['connecting', 'connected', 'disconnected', 'connecting', 'rejected'])
  })

  it('stops for good when closed', () => {
    const { close, sock, states } = start()
    const s = sock()
    s.serverOpen()
    const before = states.length
    close()
    expect(s.closed).toBe(true)
    expect(states.length).toBe(before) // no 'disconnected' from a closed transport
    vi.advanceTimersByTime(60_000)
    expect(FakeSocket.all).toHaveLength(1)
  })

  it('uses full jitter under the cap', () => {
    const roll = vi.spyOn(Math, 'random')
    roll.mockReturnValue(0.5)
    expect(backoffDelay(0, 500, 10_000)).toBe(250)
    roll.mockReturnValue(0.999)
    expect(backoffDelay(3, 500, 10_000)).toBe(3996)
    expect(backoffDelay(50, 500, 10_000)).toBe(9990)
    expect(backoffDelay(2000, 500, 10_000)).toBe(9990)
    roll.mockReturnValue(0)
    expect(backoffDelay(2, 500, 10_000)).toBe(0)
  })
})
