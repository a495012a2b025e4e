// The in-memory fetch plays the server's HTTP side: the session and trace routes answer by
// themselves, commands go to the responder (202 by default), and every request is recorded,
// whether the caller passed (url, init) or a Request (as an instrumented fetch does).
import { describe, expect, it } from 'vitest'
import { ACCEPTED, memoryFetch } from '../../src/testing/index.js'

describe('memoryFetch', () => {
  it('answers the session and trace routes itself and commands with 202, recording each request', async () => {
    const server = memoryFetch()
    const session = await server.fetch('/clicktrace/session', { method: 'POST', body: '{}' })
    expect(await session.json()).toMatchObject({ client_id: expect.any(String), token: 'tok-1' })
    expect((await server.fetch('/clicktrace/v1/traces', { method: 'POST', body: '{}' })).status).toBe(200)
    const command = await server.fetch('/api/x', { method: 'POST', headers: { 'x-correlation-id': 'c' }, body: '{"a":1}' })
    expect([command.status, await command.json()]).toEqual([ACCEPTED.status, ACCEPTED.body])
    expect(server.sent.map((r) => r.url)).toEqual(['/clicktrace/session', '/clicktrace/v1/traces', '/api/x'])
    expect(server.commands()).toEqual([{ url: '/api/x', method: 'POST', headers: { 'x-correlation-id': 'c' }, body: { a: 1 } }])
  })

  it('reads a Request as an instrumented fetch passes it, and answers through the responder', async () => {
    const server = memoryFetch((req) => ({ status: 422, body: { error: { code: 'invalid', message: String(req.body?.a) } } }))
    const r = await server.fetch(new Request('http://localhost/api/x', { method: 'PUT', headers: { 'x-a': '1' }, body: '{"a":2}' }))
    expect(r.status).toBe(422)
    expect(await r.json()).toEqual({ error: { code: 'invalid', message: '2' } })
    expect(server.commands()[0]).toMatchObject({ url: 'http://localhost/api/x', method: 'PUT', headers: { 'x-a': '1' }, body: { a: 2 } })
  })
})
