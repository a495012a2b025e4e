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
pinia.use(createClicktrace({
  transport, onStatus: recordStatus,
  ...(deadline > 0 ? { deadlineMs: deadline } : {}),
}))
createApp(App).use(pinia).mount('#app')
