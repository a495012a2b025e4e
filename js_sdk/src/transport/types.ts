// A transport only moves notifications; the client owns the protocol (seq, epoch, resume, dispatch).

/** Sent at every (re)connect: Socket.IO `auth`, the WebSocket's first frame. */
export interface Hello {
  token: string
  last_seq: number
  /** The replay epoch `last_seq` belongs to (absent until the server named one). */
  epoch?: string
}

/**
 * The connection as a store shows it. `idle`: nothing sent yet; `rejected`: the server refused
 * the token (it may have restarted with a new secret); `failed`: the transport cannot work
 * (its library is missing, or it never reached the server); see `onError`.
 */
export type ConnectionStatus = 'idle' | 'connecting' | 'connected' | 'disconnected' | 'rejected' | 'failed'

export interface TransportHandlers {
  /** Called at every connect attempt, so a reconnect resumes from the latest seq. */
  hello(): Hello
  /** One decoded notification (untrusted: the client validates it). */
  message(data: unknown): void
  state(state: Exclude<ConnectionStatus, 'idle'>): void
  /** A failure the user must fix (a missing library, a server never reached); the client reports it loudly. */
  error(error: Error): void
}

/** Closes the connection for good; `send`, when the transport has it, sends a frame (a topic
 * watch) on the open connection and drops it otherwise: the client sends its watches again at
 * every `connected`. */
export type Connection = (() => void) & { send?: (frame: object) => void }

export interface Transport {
  /** Start connecting (and reconnecting). */
  connect(handlers: TransportHandlers): Connection
}
