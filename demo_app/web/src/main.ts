import { createApp } from 'vue'
import { createPinia } from 'pinia'
import { createClicktrace } from 'clicktrace-pinia'
import App from './App.vue'
import { recordStatus } from './activity'

const transport = new URLSearchParams(location.search).get('transport') === 'websocket'
  ? 'websocket' : 'socket.io'

const pinia = createPinia()
pinia.use(createClicktrace({ transport, onStatus: recordStatus }))
createApp(App).use(pinia).mount('#app')
