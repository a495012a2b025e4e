// @vitest-environment node
/// <reference types="node" />
// The plugin's core against the real demo server (python -m demo_app.server, from the repo's
// .venv): both transports, the three outcomes, OTLP ingestion, and recovery from a server
// restart with a new token secret. Run after `make setup`; CI must not skip it.
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { io } from 'socket.io-client'
import { afterAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { type ClicktraceOptions, createClient, socketIoTransport, webSocketTransport } from '../../src/core.js'
import type { ConnectionStatus, Transport } from '../../src/transport/types.js'

const ROOT = resolve(import.meta.dirname, '../../..')
const PYTHON = join(ROOT, '.venv/bin/python')
const available = existsSync(PYTHON)
const dataDir = mkdtempSync(join(tmpdir(), 'clicktrace-js-it-'))
const servers = new Set<ChildProcess>()

const freePort = (): Promise<number> =>
  new Promise((ok, fail) => {
    const s = createServer()
      .listen(0, '127.0.0.1', () => {
        const { port } = s.address() as { port: number }
        s.close(() => ok(port))
      })
      .on('error', fail)
  })

async function startServer(port: number, transport: 'socketio' | 'websocket', env: Record<string, string> = {}): Promise<ChildProcess> {
  const child = spawn(PYTHON, ['-m', 'demo_app.server'], {
    cwd: ROOT,
    stdio: 'ignore',
    env: {
      ...process.env,
      HOST: '127.0.0.1',
      PORT: String(port),
      DATA_DIR: join(dataDir, transport),
      CLICKTRACE_TRANSPORT: transport,
      ...env,
    },
  })
  servers.add(child)
  for (let i = 0; i < 300; i++) {
    // up to ~30 s for a cold start on a busy machine
    const up = await fetch(`http://127.0.0.1:${port}/api/products`).then(
      (r) => r.ok,
      () => false,
    )
    if (up) return child
    if (child.exitCode !== null) throw new Error(`demo server exited with ${child.exitCode}`)
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error('demo server did not come up')
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode === null) {
    const gone = new Promise((r) => child.once('exit', r))
    child.kill('SIGTERM')
    await gone
  }
  servers.delete(child)
}

afterAll(async () => {
  for (const s of servers) await stop(s)
  rmSync(dataDir, { recursive: true, force: true })
})

function client(port: number, transport: Transport, extra: Partial<ClicktraceOptions> = {}) {
  const origin = `http://127.0.0.1:${port}`
  const exports: Array<{ status: number; body: unknown }> = []
  const states: ConnectionStatus[] = []
  let token = ''
  const fetcher = (async (u: RequestInfo | URL, init?: RequestInit) => {
    token = new Headers(init?.headers).get('x-clicktrace-client') ?? token
    const r = await fetch(u, init)
    if (String(u).endsWith('/clicktrace/v1/traces')) exports.push({ status: r.status, body: await r.clone().json() })
    return r
  }) as typeof fetch
  const watched: Transport = {
    connect: (h) =>
      transport.connect({
        ...h,
        state: (s) => {
          states.push(s)
          h.state(s)
        },
      }),
  }
  const c = createClient({
    transport: watched,
    fetch: fetcher,
    propagateTo: [origin],
    deadlineMs: 10_000,
    sessionUrl: `${origin}/clicktrace/session`,
    tracesUrl: `${origin}/clicktrace/v1/traces`,
    ...extra,
  })
  const rename = (id: number, name: string) =>
    c.command({ url: `${origin}/api/products/${id}/rename`, body: { name }, name: 'rename' }, { optimistic: () => {}, settle: () => {} })
  return { c, rename, exports, states, token: () => token }
}

const products = async (port: number) =>
  (await (await fetch(`http://127.0.0.1:${port}/api/products`)).json()) as Array<{ id: number; name: string }>

describe.runIf(available || process.env.CI === 'true')('against the demo server', () => {
  it('Socket.IO: confirms, rejects in the projection and at the API, and the spans are ingested', { timeout: 60_000 }, async () => {
    const port = await freePort()
    const server = await startServer(port, 'socketio')
    const { c, rename, exports } = client(port, socketIoTransport({ url: `http://127.0.0.1:${port}`, io }))
    const [first, second] = await products(port)
    const ok = await rename(first!.id, 'Renamed over Socket.IO').settled
    expect(ok).toMatchObject({ status: 'confirmed', data: { id: first!.id, name: 'Renamed over Socket.IO' } })
    const taken = await rename(second!.id, 'Renamed over Socket.IO').settled
    expect(taken).toMatchObject({ status: 'rejected', error: { code: 'name_taken' } })
    const empty = await rename(second!.id, '').settled
    expect(empty).toMatchObject({ status: 'rejected', error: { code: 'invalid_name' } })
    for (let i = 0; i < 100 && exports.length === 0; i++) await new Promise((r) => setTimeout(r, 100)) // one batch
    expect(exports.length).toBeGreaterThan(0)
    expect(exports.every((e) => e.status === 200 && JSON.stringify(e.body) === '{"partialSuccess":{}}')).toBe(true)
    c.close()
    await stop(server)
  })

  it('WebSocket: confirms, and recovers after a restart with a new token secret', { timeout: 90_000 }, async () => {
    const port = await freePort()
    let server = await startServer(port, 'websocket')
    const transport = webSocketTransport({
      url: `ws://127.0.0.1:${port}/clicktrace/ws`,
      WebSocket: WebSocket as unknown as typeof globalThis.WebSocket,
    })
    const { c, rename, states } = client(port, transport, { tracesUrl: false })
    const [first] = await products(port)
    expect(await rename(first!.id, 'Renamed over WebSocket').settled).toMatchObject({ status: 'confirmed' })
    await stop(server)
    server = await startServer(port, 'websocket') // a new random secret: the old token is refused
    for (let i = 0; i < 300 && !(states.includes('rejected') && states.at(-1) === 'connected'); i++) {
      await new Promise((r) => setTimeout(r, 100))
    }
    expect(states).toContain('rejected')
    expect(states.at(-1)).toBe('connected')
    expect(await rename(first!.id, 'After the restart').settled).toMatchObject({ status: 'confirmed', data: { name: 'After the restart' } })
    c.close()
    await stop(server)
  })

  // Issue 21 finding 1: another client's change reaches a client watching the topic, live.
  for (const kind of ['socketio', 'websocket'] as const) {
    it(`${kind}: a client watching the catalogue gets another client's rename`, { timeout: 60_000 }, async () => {
      const port = await freePort()
      const server = await startServer(port, kind, { DATA_DIR: join(dataDir, `live-${kind}`) })
      const origin = `http://127.0.0.1:${port}`
      const make = (): Transport =>
        kind === 'socketio'
          ? socketIoTransport({ url: origin, io })
          : webSocketTransport({
              url: `ws://127.0.0.1:${port}/clicktrace/ws`,
              WebSocket: WebSocket as unknown as typeof globalThis.WebSocket,
            })
      const a = client(port, make(), { tracesUrl: false })
      const b = client(port, make(), { tracesUrl: false })
      const seen: unknown[] = []
      b.c.watch('catalogue', (n) => seen.push(n.data))
      for (let i = 0; i < 100 && b.states.at(-1) !== 'connected'; i++) await new Promise((r) => setTimeout(r, 100))
      const [first] = await products(port)
      expect(await a.rename(first!.id, `Live over ${kind}`).settled).toMatchObject({ status: 'confirmed' })
      for (let i = 0; i < 100 && seen.length === 0; i++) await new Promise((r) => setTimeout(r, 100))
      expect(seen).toMatchObject([{ id: first!.id, name: `Live over ${kind}` }])
      a.c.close()
      b.c.close()
      await stop(server)
    })
  }

  // Issue 9 item 2, end to end: a restarted memory replay buffer numbers from 1 again, here
  // for three outcomes of this tab's client made while it was away; the token (same secret)
  // still holds. Resuming from seq 2 would replay only seq 3 and lose two outcomes silently;
  // the epoch the tab presents tells the server to answer with a resync instead.
  for (const kind of ['socketio', 'websocket'] as const) {
    it(`${kind}: after a restart that reuses seq numbers, resyncs instead of skipping, and settles the next command`, {
      timeout: 120_000,
    }, async () => {
      const port = await freePort()
      const env = { CLICKTRACE_SECRET: 'integration-epoch-secret-0123456789abcdef', DATA_DIR: join(dataDir, `epoch-${kind}`) }
      let server = await startServer(port, kind, env)
      const origin = `http://127.0.0.1:${port}`
      const transport =
        kind === 'socketio'
          ? socketIoTransport({ url: origin, io })
          : webSocketTransport({
              url: `ws://127.0.0.1:${port}/clicktrace/ws`,
              WebSocket: WebSocket as unknown as typeof globalThis.WebSocket,
            })
      const { c, rename, token } = client(port, transport, { tracesUrl: false })
      let resyncs = 0
      c.onResync(() => resyncs++)
      const [first, , third] = await products(port)
      for (const name of ['Before 1', 'Before 2']) expect(await rename(first!.id, name).settled).toMatchObject({ status: 'confirmed' })
      c.close() // the tab is away (asleep, offline) across the restart
      await stop(server)
      server = await startServer(port, kind, env)
      for (const n of [1, 2, 3]) {
        const r = await fetch(`${origin}/api/products/${third!.id}/rename`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-clicktrace-client': token() },
          body: JSON.stringify({ name: `Away ${n}` }),
        })
        expect(r.status).toBe(202)
      }
      for (let i = 0; i < 100 && (await products(port))[2]!.name !== 'Away 3'; i++) await new Promise((r) => setTimeout(r, 100))
      // Any command reconnects the tab, with last_seq 2 and the old epoch (this one is refused:
      // no such product). The resync comes before the next command is sent, because a command
      // accepted between the socket's open and the server's reading of the hello is numbered
      // into the resync and not replayed (a server-side race, reported, not ours to test here).
      expect(await rename(999_999, 'Nobody').settled).toMatchObject({ status: 'rejected', error: { code: 'not_found' } })
      for (let i = 0; i < 100 && resyncs === 0; i++) await new Promise((r) => setTimeout(r, 100))
      expect(resyncs).toBe(1)
      const after = rename(first!.id, 'After the restart') // a seq of the new epoch: delivered
      expect(await after.settled).toMatchObject({ status: 'confirmed', data: { name: 'After the restart' } })
      c.close()
      await stop(server)
    })
  }
})
