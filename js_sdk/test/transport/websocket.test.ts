import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { UNREACHABLE_AFTER } from '../../src/protocol.js'
import type { ConnectionStatus, Hello } from '../../src/transport/types.js'
import { backoffDelay, WS_MAX_DELAY_MS, webSocketTransport } from '../../src/transport/websocket.js'

/** A scripted WebSocket: the test opens, closes and feeds frames. */
class FakeSocket {
  static all: FakeSocket[] = []
  sent: string[] = []
  closed = false
  readyState = 0
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
    this.readyState = 1
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
  const states: ConnectionStatus[] = []
  let hello: Hello = { token: 't', last_seq: 0 }
  const t = webSocketTransport({ WebSocket: FakeSocket as unknown as typeof WebSocket })
  const errors: Error[] = []
  const close = t.connect({
    hello: () => hello,
    message: (m) => messages.push(m),
    state: (s) => states.push(s),
    error: (e) => errors.push(e),
  })
  return { messages, states, errors, close, setHello: (h: Hello) => (hello = h), sock: () => FakeSocket.all[FakeSocket.all.length - 1]! }
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

  it('sends a watch as a text frame after the hello while open, and drops it otherwise', () => {
    const { close, sock } = start()
    close.send?.({ watch: 'early' }) // not open yet
    sock().serverOpen()
    close.send?.({ watch: 'seats', seq: 2, epoch: undefined })
    expect(sock().sent).toEqual([JSON.stringify({ token: 't', last_seq: 0 }), '{"watch":"seats","seq":2}'])
    const first = sock()
    first.readyState = 3
    first.serverDrop()
    close.send?.({ watch: 'late' }) // between two connections: dropped
    expect(first.sent).toHaveLength(2)
    close()
  })

  it('sends the epoch in the hello when the client has one', () => {
    const { sock, setHello } = start()
    setHello({ token: 't', last_seq: 4, epoch: 'e7' })
    sock().serverOpen()
    expect(JSON.parse(sock().sent[0]!)).toEqual({ token: 't', last_seq: 4, epoch: 'e7' })
  })

  it('reports a WebSocket that never opens once, after UNREACHABLE_AFTER attempts, naming the URL and the fix', () => {
    const { sock, errors } = start()
    for (let i = 0; i < UNREACHABLE_AFTER + 3; i++) {
      expect(errors).toHaveLength(i < UNREACHABLE_AFTER ? 0 : 1)
      sock().serverDrop(1006, '')
      vi.advanceTimersByTime(WS_MAX_DELAY_MS)
    }
    expect(errors).toHaveLength(1)
    expect(errors[0]).toMatchObject({ code: 'transport_unreachable' })
    expect(errors[0]!.message).toMatch(/ws:\/\/.*\/clicktrace\/ws did not open \(3 tries, close 1006\).*ws: true/)
    const opened = start() // one that opened once and then lost the server is not misconfigured
    opened.sock().serverOpen()
    for (let i = 0; i < 5; i++) {
      opened.sock().serverDrop(1006, '')
      vi.advanceTimersByTime(WS_MAX_DELAY_MS)
    }
    expect(opened.errors).toHaveLength(0)
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
