// State copies for the rebase model: plain objects and arrays copied, anything else shared.

/** Deep copy of plain objects and arrays, read through Vue proxies; other values are shared. */
export function clonePlain<T>(value: T): T {
  if (Array.isArray(value)) return value.map(clonePlain) as T
  if (value !== null && typeof value === 'object') {
    const proto = Object.getPrototypeOf(value) as unknown
    if (proto === Object.prototype || proto === null) {
      const out: Record<string, unknown> = {}
      for (const k of Object.keys(value)) out[k] = clonePlain((value as Record<string, unknown>)[k])
      return out as T
    }
  }
  return value
}
