// The tab's identity: POST /clicktrace/session once, reuse until shortly before expiry.

export interface Session {
  clientId: string
  token: string
  expiresAt: number | undefined
}

/** Renew this long before the token expires, so a command never carries a dead token. */
export const SESSION_RENEW_MARGIN_MS = 30_000

export class SessionSource {
  private current: Promise<Session> | undefined
  private value: Session | undefined

  constructor(
    private readonly url: string,
    private readonly fetcher: typeof fetch,
  ) {}

  /** The last session obtained, if any (for headers that cannot wait). */
  get known(): Session | undefined {
    return this.value
  }

  get(): Promise<Session> {
    const v = this.value
    if (v && v.expiresAt !== undefined && v.expiresAt - SESSION_RENEW_MARGIN_MS <= Date.now()) {
      this.current = undefined
    }
    this.current ??= this.fetch().then(
      (s) => (this.value = s),
      (e: unknown) => {
        this.current = undefined // the next command tries again
        throw e
      },
    )
    return this.current
  }

  private async fetch(): Promise<Session> {
    const res = await this.fetcher(this.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
      credentials: 'same-origin',
    })
    if (!res.ok) throw new Error(`clicktrace session: HTTP ${res.status}`)
    const body = (await res.json()) as { client_id?: unknown; token?: unknown; expires_at?: unknown }
    if (typeof body.client_id !== 'string' || typeof body.token !== 'string') {
      throw new Error('clicktrace session: malformed response')
    }
    return {
      clientId: body.client_id,
      token: body.token,
      expiresAt: typeof body.expires_at === 'number' ? body.expires_at : undefined,
    }
  }
}
