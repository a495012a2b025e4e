// The tab's identity: POST /clicktrace/session once, reuse until shortly before expiry.

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
}

export function sessionSource(url: string, fetcher: typeof fetch): SessionSource {
  let current: Promise<Session> | undefined
  let value: Session | undefined

  async function load(): Promise<Session> {
    // Presenting the current token keeps the client id (and so its seq) when it is still valid.
    const headers: Record<string, string> = { 'content-type': 'application/json' }
    if (value) headers['x-clicktrace-client'] = value.token
    const res = await fetcher(url, { method: 'POST', headers, body: '{}' })
    const b = (res.ok ? await res.json() : {}) as { client_id?: unknown; token?: unknown; expires_at?: unknown }
    if (typeof b.client_id !== 'string' || typeof b.token !== 'string') throw new Error(`clicktrace session: HTTP ${res.status}`)
    return { clientId: b.client_id, token: b.token, expiresAt: typeof b.expires_at === 'number' ? b.expires_at : undefined }
  }

  return {
    known: () => value,
    get(renew) {
      // Without expires_at the difference is NaN and the session never expires here.
      if (renew || (value?.expiresAt as number) - SESSION_RENEW_MARGIN_MS <= Date.now()) current = undefined
      current ??= load().then(
        (s) => (value = s),
        (e: unknown) => {
          current = undefined // the next command tries again
          throw e
        },
      )
      return current
    },
  }
}
