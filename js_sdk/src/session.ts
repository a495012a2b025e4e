// The tab's identity: POST /clicktrace/session once, reuse until shortly before expiry.
import { ClicktraceError } from './errors.js'
import { CLIENT_HEADER, SESSION_UNAVAILABLE } from './protocol.js'

export interface Session {
  clientId: string
  token: string
  expiresAt: number | undefined
}

/** Renew this long before the token expires, so a command never carries a dead token. */
export const SESSION_RENEW_MARGIN_MS = 30_000

export interface SessionSource {
  /** The current session, fetching (or renewing) it when needed; concurrent callers share one request. */
  get(renew?: boolean): Promise<Session>
  /** The last session obtained, if any (for headers that cannot wait). */
  known(): Session | undefined
  /** True when `get()` would answer at once (a session that is not due for renewal). */
  fresh(): boolean
}

const refused = (url: string, why: string, cause?: unknown): ClicktraceError =>
  new ClicktraceError(
    SESSION_UNAVAILABLE,
    `clicktrace: no session from POST ${url} (${why}): mount the session route or set sessionUrl`,
    cause,
  )

// The page's latest session, for `readJournal` (clicktrace-pinia/journal): the journal route
// answers the tab that owns a click, and a tab is its session's token.
let latest: Session | undefined
/** The session the page's client obtained last, if any. */
export const latestSession = (): Session | undefined => latest

export function sessionSource(url: string, fetcher: typeof fetch): SessionSource {
  let current: Promise<Session> | undefined
  let value: Session | undefined

  async function load(): Promise<Session> {
    // Presenting the current token keeps the client id (and so its seq) when it is still valid.
    const headers: Record<string, string> = { 'content-type': 'application/json' }
    if (value) headers[CLIENT_HEADER] = value.token
    let res: Response
    try {
      res = await fetcher(url, { method: 'POST', headers, body: '{}' })
    } catch (e) {
      throw refused(url, `network: ${String(e)}`, e)
    }
    const b = (res.ok ? await res.json().catch(() => ({})) : {}) as { client_id?: unknown; token?: unknown; expires_at?: unknown }
    if (typeof b.client_id !== 'string' || typeof b.token !== 'string') {
      throw refused(url, res.ok ? 'the answer has no client_id and token' : `HTTP ${res.status}`)
    }
    return { clientId: b.client_id, token: b.token, expiresAt: typeof b.expires_at === 'number' ? b.expires_at : undefined }
  }

  // Without expires_at the difference is NaN and the session never expires here.
  const due = (): boolean => (value?.expiresAt as number) - SESSION_RENEW_MARGIN_MS <= Date.now()
  return {
    known: () => value,
    fresh: () => value !== undefined && !due(),
    get(renew) {
      if (renew || due()) current = undefined
      current ??= load().then(
        (s) => (latest = value = s),
        (e: unknown) => {
          current = undefined // the next command tries again
          throw e
        },
      )
      return current
    },
  }
}
