import { defineConfig } from 'vite'
import vue from '@vitejs/plugin-vue'

// `npm run dev` serves the page; the API, the session, the browser's spans and the socket
// go to the FastAPI server (`uvicorn server:app`).
const api = process.env.TODO_API ?? 'http://127.0.0.1:8000'

export default defineConfig({
  plugins: [vue()],
  server: {
    proxy: {
      '/api': api,
      '/clicktrace': { target: api, ws: true },
      '/socket.io': { target: api, ws: true },
    },
  },
})
