// Which URLs may receive traceparent / x-correlation-id / the client token.
// Same origin always; other origins only when listed; never a third party by default.

export type PropagateTo = ReadonlyArray<string | RegExp>

function base(): string | undefined {
  return typeof location === 'undefined' ? undefined : location.href
}

/** The absolute URL, or undefined when `url` cannot be resolved. */
export function resolveUrl(url: string): URL | undefined {
  try {
    return new URL(url, base())
  } catch {
    return undefined
  }
}

export function mayPropagate(url: string, propagateTo: PropagateTo): boolean {
  const target = resolveUrl(url)
  if (!target) return false
  if (typeof location !== 'undefined' && target.origin === location.origin) return true
  return propagateTo.some((rule) =>
    typeof rule === 'string' ? resolveUrl(rule)?.origin === target.origin : rule.test(target.href),
  )
}
