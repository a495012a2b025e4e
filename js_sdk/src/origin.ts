// Which URLs may receive traceparent / x-correlation-id / the client token.
// Same origin always; other origins only when listed; never a third party by default.

export type PropagateTo = ReadonlyArray<string | RegExp>

/** The absolute URL, or undefined when `url` cannot be resolved. */
export function resolveUrl(url: string): URL | undefined {
  try {
    return new URL(url, globalThis.location?.href)
  } catch {
    return undefined
  }
}

export function mayPropagate(url: string, propagateTo: PropagateTo): boolean {
  const target = resolveUrl(url)
  if (!target) return false
  return (
    target.origin === globalThis.location?.origin ||
    propagateTo.some((rule) => (typeof rule === 'string' ? resolveUrl(rule)?.origin === target.origin : rule.test(target.href)))
  )
}
