import { reactive } from 'vue'
import type { CommandRecord } from 'clicktrace-pinia'

/** Every status each command went through, so the page can show "pending → confirmed". */
export const timelines = reactive(new Map<string, string[]>())

export function recordStatus(record: CommandRecord): void {
  const steps = timelines.get(record.correlationId) ?? []
  if (steps[steps.length - 1] !== record.status) steps.push(record.status)
  timelines.set(record.correlationId, steps)
}
