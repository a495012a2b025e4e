// Browser bundle size: clicktrace-pinia's own code (vue, pinia, socket.io-client external)
// next to @opentelemetry/sdk-trace-web + @opentelemetry/instrumentation-fetch, each bundled the
// same way: esbuild, ESM, browser platform, minified, then gzip -9. Goal: <= 5 KB for ours.
import { execFileSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { gzipSync } from 'node:zlib'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const sdk = join(root, 'js_sdk')
// esbuild is a devDependency of js_sdk (npm may not hoist it to the root).
const { build } = createRequire(join(sdk, 'package.json'))('esbuild')
// Measure what users install: the tsc output in js_sdk/dist, rebuilt now.
execFileSync('npm', ['run', '-s', 'build', '-w', 'clicktrace-pinia'], { cwd: root, stdio: 'inherit' })
const GOAL = 5 * 1024

const entries = [
  {
    name: 'clicktrace-pinia: createClicktrace (what an app imports)',
    code: "import { createClicktrace } from './dist/index.js'; export const p = createClicktrace()",
    external: ['vue', 'pinia', 'socket.io-client'],
    goal: true,
  },
  {
    name: 'clicktrace-pinia: whole public API',
    code: "export * from './dist/index.js'",
    external: ['vue', 'pinia', 'socket.io-client'],
  },
  {
    name: '@opentelemetry/sdk-trace-web + instrumentation-fetch (incl. @opentelemetry/api)',
    code: `import { WebTracerProvider } from '@opentelemetry/sdk-trace-web'
import { FetchInstrumentation } from '@opentelemetry/instrumentation-fetch'
export const p = new WebTracerProvider(); export const f = new FetchInstrumentation()`,
    external: [],
  },
]

async function measure({ code, external }) {
  const out = await build({
    stdin: { contents: code, resolveDir: sdk, loader: 'ts', sourcefile: 'entry.ts' },
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    treeShaking: true,
    external,
    logLevel: 'silent',
    define: { 'process.env.NODE_ENV': '"production"' },
  })
  const bytes = out.outputFiles[0].contents
  return { min: bytes.length, gz: gzipSync(bytes, { level: 9 }).length }
}

const kb = (n) => `${(n / 1024).toFixed(2)} KB`
const results = []
for (const e of entries) results.push({ ...e, ...(await measure(e)) })
const ours = results[0].gz
console.log('bundle (esbuild --minify, gzip -9)'.padEnd(82), 'min'.padStart(10), 'min+gz'.padStart(10), 'ratio'.padStart(7))
for (const r of results) {
  console.log(r.name.padEnd(82), kb(r.min).padStart(10), kb(r.gz).padStart(10), `${(r.gz / ours).toFixed(1)}x`.padStart(7))
}
const ok = ours <= GOAL
console.log(`goal: clicktrace-pinia <= ${kb(GOAL)} min+gzip: ${ok ? 'met' : 'MISSED'} (${ours} bytes)`)
if (process.argv.includes('--check') && !ok) process.exit(1)
