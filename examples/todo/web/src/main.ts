import { createApp } from 'vue'
import { createPinia } from 'pinia'
import { createClicktrace, socketIoTransport } from 'clicktrace-pinia'
import { exposeTestHook } from 'clicktrace-pinia/testing'
import App from './App.vue'

const pinia = createPinia()
pinia.use(createClicktrace({
  transport: socketIoTransport(),
  // The e2e build (`vite build --mode e2e`, see .env.e2e) exposes the test hook; others do not.
  testHook: import.meta.env.VITE_CLICKTRACE_TEST_HOOK ? exposeTestHook() : undefined,
}))
createApp(App).use(pinia).mount('#app')
