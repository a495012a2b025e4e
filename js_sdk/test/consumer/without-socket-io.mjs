// Type-checks websocket-app.ts (strict, skipLibCheck off) as if socket.io-client were not
// installed: a compiler host that hides node_modules/socket.io-client, so any .d.ts of ours
// that imports it fails with TS2307. The same host must fail a file that does import it
// (TS2307), or the hiding itself would be broken and the check could not fail.
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'

const here = dirname(fileURLToPath(import.meta.url))
const hidden = /[\\/]node_modules[\\/]socket\.io-client([\\/]|$)/
const { config } = ts.readConfigFile(join(here, 'tsconfig.json'), ts.sys.readFile)
const { options } = ts.parseJsonConfigFileContent(config, ts.sys, here)

function check(file, source) {
  const host = ts.createCompilerHost(options)
  const fileExists = host.fileExists.bind(host)
  host.fileExists = (f) => !hidden.test(f) && fileExists(f)
  host.directoryExists = (d) => !hidden.test(d) && ts.sys.directoryExists(d)
  if (source !== undefined) {
    const getSourceFile = host.getSourceFile.bind(host)
    host.getSourceFile = (f, v) => (f === file ? ts.createSourceFile(f, source, v) : getSourceFile(f, v))
    const exists = host.fileExists
    host.fileExists = (f) => f === file || exists(f)
  }
  const program = ts.createProgram([file], options, host)
  return ts.getPreEmitDiagnostics(program)
}

const show = (ds) => ts.formatDiagnostics(ds, { getCanonicalFileName: (f) => f, getCurrentDirectory: () => here, getNewLine: () => '\n' })
const app = check(join(here, 'websocket-app.ts'))
if (app.length) {
  console.error(`a WebSocket-only app does not type-check without socket.io-client:\n${show(app)}`)
  process.exit(1)
}
const canary = check(join(here, 'canary.ts'), "import type { io } from 'socket.io-client'\nexport type Io = typeof io\n")
if (!canary.some((d) => d.code === 2307)) {
  console.error(`socket.io-client was not hidden (expected TS2307):\n${show(canary)}`)
  process.exit(1)
}
console.log('a WebSocket-only app type-checks without socket.io-client (strict, skipLibCheck off)')
