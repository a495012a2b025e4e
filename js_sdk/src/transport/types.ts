// A transport only moves notifications; the client owns the protocol (seq, resume, dispatch).

/** Sent at every (re)connect: Socket.IO `auth`, the WebSocket's first frame. */
export interface Hello {
  token: string
  last_seq: number
}

/** `rejected`: the server refused the token (it may have restarted with a new secret). */
export type ConnectionState = 'connecting' | 'connected' | 'disconnected' | 'rejected'

export interface TransportHandlers {
  /** Called at every connect attempt, so a reconnect resumes from the latest seq. */
  hello(): Hello
  /** One decoded notification (untrusted: the client validates it). */
  message(data: unknown): void
  state(state: ConnectionState): void
}

export interface Transport {
  /** Start connecting (and reconnecting); the returned function closes for good. */
  connect(handlers: TransportHandlers): () => void
}
