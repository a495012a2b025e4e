// The opt-in test hook: an end-to-end test reads the page's commands and flushes its spans
// through `window.__clicktrace` instead of scraping the DOM or waiting out the export delay.
// Imported from `clicktrace-pinia/testing` and passed as `testHook: exposeTestHook()`, so a
// production bundle neither carries it nor exposes anything.
import { TEST_HOOK_NAME } from '../protocol.js'
import type { CommandRecord } from '../types.js'

/** What `window.__clicktrace` (or the name given) holds. */
export interface TestHook {
  /** Every command of this page, oldest first (at most MAX_TEST_RECORDS): the live records, so
   * `correlationId`, `status`, `error.code` follow each command to its outcome. */
  readonly commands: ReadonlyArray<Readonly<CommandRecord>>
  /** Export the spans ended so far; resolves when the export request has been answered. */
  flush(): Promise<void>
}

/** Given the client's span flush, returns what to call with each new command's record. */
export type TestHookInstaller = (flush: () => Promise<void>) => (record: CommandRecord) => void

/** The oldest records leave the hook beyond this many (a long e2e session must not grow without bound). */
export const MAX_TEST_RECORDS = 1_000

export function exposeTestHook(name: string = TEST_HOOK_NAME): TestHookInstaller {
  return (flush) => {
    const commands: CommandRecord[] = []
    ;(globalThis as Record<string, unknown>)[name] = { commands, flush } satisfies TestHook
    return (record) => {
      if (commands.push(record) > MAX_TEST_RECORDS) commands.shift()
    }
  }
}
