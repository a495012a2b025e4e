// What the entries hand out at run time: the framework-free client's names, and never the wire
// protocol's constants (protocol.ts is the SDK's own; users get options and documented values).
import { describe, expect, it } from 'vitest'
import * as core from '../src/core.js'
import * as main from '../src/index.js'
import * as otel from '../src/otel.js'
import * as protocol from '../src/protocol.js'
import * as testing from '../src/testing/index.js'

describe('the package entries', () => {
  it('core: the client, the transports, the rebase model and the id parsers', () => {
    expect(Object.keys(core).sort()).toEqual([
      'ClicktraceError',
      'clonePlain',
      'createClient',
      'parseCorrelationId',
      'parseTraceparent',
      'rebase',
      'socketIoTransport',
      'webSocketTransport',
    ])
  })

  it('no entry exports a protocol constant', () => {
    const wire = new Set(Object.keys(protocol))
    for (const entry of [main, core, otel, testing]) expect(Object.keys(entry).filter((k) => wire.has(k))).toEqual([])
  })
})
