import { createApp } from 'vue'
import { createPinia } from 'pinia'
import { createClicktrace, socketIoTransport, webSocketTransport } from 'clicktrace-pinia'
import App from './App.vue'
import { recordStatus } from './activity'

const query = new URLSearchParams(location.search)
// The demo serves both transports (?transport=websocket), so it imports both; an app imports one.
const transport = query.get('transport') === 'websocket' ? webSocketTransport() : socketIoTransport()
// `?deadline=4000` shortens the commands' deadline (the fault demos time out sooner).
const deadline = Number(query.get('deadline'))

const pinia = createPinia()
// prewarm: the session and the socket open at start, so the first click waits for neither.
pinia.use(createClicktrace({
  transport, onStatus: recordStatus, prewarm: true,
  ...(deadline > 0 ? { deadlineMs: deadline } : {}),
}))
createApp(App).use(pinia).mount('#app')
