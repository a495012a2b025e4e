import { createApp } from 'vue'
import { createPinia } from 'pinia'
import { createClicktrace } from 'clicktrace-pinia'
import App from './App.vue'
import { recordStatus } from './activity'
import { sessionFetch } from './journal'

const query = new URLSearchParams(location.search)
const transport = query.get('transport') === 'websocket' ? 'websocket' : 'socket.io'
// `?deadline=4000` shortens the commands' deadline (the fault demos time out sooner).
const deadline = Number(query.get('deadline'))

const pinia = createPinia()
pinia.use(createClicktrace({
  transport, onStatus: recordStatus, fetch: sessionFetch,
  ...(deadline > 0 ? { deadlineMs: deadline } : {}),
}))
createApp(App).use(pinia).mount('#app')
