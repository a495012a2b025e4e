import { defineConfig } from 'vite'
import vue from '@vitejs/plugin-vue'

// The demo server serves dist/ itself; `vite dev` proxies the API and the socket to it.
const server = process.env.DEMO_SERVER ?? 'http://127.0.0.1:8000'

export default defineConfig({
  plugins: [vue()],
  build: { outDir: 'dist', emptyOutDir: true },
  server: {
    proxy: {
      '/api': server,
      '/clicktrace': { target: server, ws: true },
      '/socket.io': { target: server, ws: true },
    },
  },
})
