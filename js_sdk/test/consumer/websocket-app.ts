// A WebSocket-only app, checked by without-socket-io.mjs as if socket.io-client were not
// installed: the package's .d.ts files must not need it (issue 21, finding 4).

import { type CommandHandle, createClicktrace, webSocketTransport } from 'clicktrace-pinia'
import { createPinia, defineStore } from 'pinia'

export const useSeats = defineStore('seats', {
  state: () => ({ held: [] as number[] }),
  actions: {
    hold(seat: number): CommandHandle {
      return this.$command({ url: `/api/seats/${seat}/hold`, entity: seat, optimistic: (s) => void s.held.push(seat) })
    },
  },
})

const pinia = createPinia()
pinia.use(createClicktrace({ transport: webSocketTransport(), prewarm: true }))
export const held: number[] = useSeats(pinia).held
