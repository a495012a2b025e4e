// Builds the operator console's assets into the Python package, where the SDK serves them
// (the user has no build step): console.js, one minified ES bundle of console.ts with the
// waterfall from src/, and console.css, the console's rules then the waterfall's.
// `--check` builds in memory and fails when the committed files differ (make check runs it).
import { readFileSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'

const here = dirname(fileURLToPath(import.meta.url))
const { build } = createRequire(join(here, '..', 'package.json'))('esbuild')
const out = join(here, '..', '..', 'py_sdk', 'clicktrace', 'console', '_static')
const check = process.argv.includes('--check')

const js = await build({
  entryPoints: [join(here, 'console.ts')],
  bundle: true,
  write: false,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  minify: true,
  legalComments: 'none',
  charset: 'utf8',
})
// The waterfall's stylesheet, read from its module (bundled, then imported as a data: URL).
const styles = await build({
  stdin: { contents: "export { WATERFALL_CSS } from './waterfall.ts'", resolveDir: join(here, '..', 'src'), loader: 'ts' },
  bundle: true,
  write: false,
  format: 'esm',
  platform: 'neutral',
})
const { WATERFALL_CSS } = await import(`data:text/javascript;base64,${Buffer.from(styles.outputFiles[0].contents).toString('base64')}`)
const css = await build({
  stdin: { contents: `${readFileSync(join(here, 'console.css'), 'utf8')}\n${WATERFALL_CSS}`, loader: 'css', sourcefile: 'console.css' },
  write: false,
  minify: true,
  target: 'chrome110',
})
const files = { 'console.js': js.outputFiles[0].contents, 'console.css': css.outputFiles[0].contents }

const stale = []
for (const [name, bytes] of Object.entries(files)) {
  const path = join(out, name)
  const gz = gzipSync(bytes, { level: 9 }).length
  console.log(`${name}: ${bytes.length} B, ${gz} B gzip -9`)
  if (check) {
    let committed
    try {
      committed = readFileSync(path)
    } catch {
      committed = Buffer.alloc(0)
    }
    if (!committed.equals(Buffer.from(bytes))) stale.push(name)
  } else {
    writeFileSync(path, bytes)
  }
}
if (stale.length) {
  console.error(`stale console assets (${stale.join(', ')}): run \`npm run build:console -w clicktrace-pinia\` and commit them`)
  process.exit(1)
}
