/** A WebSocket constructor: the browser's, Node's, or the `ws` package's. */
export interface WebSocketLike {
  readonly readyState: number
  send(data: string): void
  close(code?: number, reason?: string): void
  // The client sets these; events are typed loosely so that the DOM's and
  // ws's classes both fit (it reads `data`, `code` and `reason`).
  onopen: ((event: any) => void) | null
  onmessage: ((event: any) => void) | null
  onclose: ((event: any) => void) | null
  onerror: ((event: any) => void) | null
}
export type WebSocketConstructor = new (url: string) => WebSocketLike

export type Status = 'connecting' | 'connected' | 'disconnected' | 'failed'

export declare const Status: {
  readonly CONNECTING: 'connecting'
  readonly CONNECTED: 'connected'
  readonly DISCONNECTED: 'disconnected'
  readonly FAILED: 'failed'
}

/** The server's close codes (1006 also stands for a keepalive timeout). */
export declare const CloseCode: {
  readonly NORMAL: 1000
  readonly ABNORMAL: 1006
  readonly UNAUTHORIZED: 4001
  readonly RATE_LIMITED: 4008
  readonly SLOW_CONSUMER: 4009
  readonly MESSAGE_TOO_BIG: 4013
  readonly TOO_MANY_CONNECTIONS: 4029
  readonly SERVICE_UNAVAILABLE: 4503
}

export interface BackoffOptions {
  /** First reconnect delay in ms (default 1000); doubles each attempt. */
  initial?: number
  /** Longest delay in ms (default 30000). */
  max?: number
  /** Reconnect attempts before `failed` (default Infinity; the seed used 5). */
  maxAttempts?: number
  /** Spread of each delay: a factor in [1 - jitter, 1 + jitter] (default 0.2). */
  jitter?: number
}

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown
  clearTimeout(handle: any): void
  now(): number
}

interface CommonOptions {
  /** ws://host:8080/ws (wss:// in production). Never put a token in it. */
  url: string
  /** The WebSocket implementation (default: globalThis.WebSocket). In Node 20 pass `ws`. */
  WebSocket?: WebSocketConstructor
  backoff?: BackoffOptions
  /** Keepalive ping every this many ms (default 25000; 0 turns keepalive off).
   *  With no message for twice that, the socket is dropped and reconnected. */
  pingInterval?: number
  /** With getToken: refresh this many ms before the token's `exp` (default 30000,
   *  at most half the token's remaining life). */
  refreshMargin?: number
  /** How many publication ids are remembered for exactly-once delivery (default 10000). */
  dedupeWindow?: number
  /** For tests: the clock and timers (default: the global ones). */
  timers?: Partial<Timers>
  /** For tests: the jitter's random source in [0, 1) (default Math.random). */
  random?: () => number
}

export type RealtimeOptions = CommonOptions &
  (
    | { /** A JWT access token, sent in the first `auth` frame. */ token?: string | null; getToken?: undefined }
    | {
        /** Gets a fresh access token: on every connect, after a 4001, and shortly before `exp`. */
        getToken: () => string | Promise<string>
        token?: undefined
      }
  )

/** A server message: `type`, `data`, `timestamp`, and for publications `channel`, `id`, `offset`, `epoch`. */
export interface ServerMessage<T = any> {
  type: string
  data: T
  timestamp?: string
  channel?: string
  id?: string
  offset?: number
  epoch?: string
}

export interface Position {
  offset: number
  epoch: string
}

export interface ResetEvent {
  channel: string
  /** `not_recovered`: resubscribed with `since` and the server could not replay
   *  the gap; `resync`: the server lost publications for good. */
  reason: 'not_recovered' | 'resync'
}

export interface StatusInfo {
  /** The close code, when a close caused the change (1006: no close frame or keepalive timeout). */
  code?: number | null
  reason?: string
  /** The server's last `error` data before the close (`{code, message}`), or a thrown error. */
  error?: any
  /** With `disconnected`: ms until the next attempt. */
  retryIn?: number
  /** With `disconnected`: which reconnect attempt comes next (1 for the first). */
  attempt?: number
}

export type Handler<T = any> = (data: T, message: ServerMessage<T>) => void
export type Remover = () => void

export interface Realtime {
  /** True while the socket is open and (with a token) authenticated. */
  readonly isConnected: boolean
  readonly status: Status
  /** The authenticated user's id, or null for an anonymous socket. */
  readonly userId: number | string | null
  /** Subscribe; remembered while disconnected and resubscribed (with `since`) on every connect. */
  subscribe(channels: string | string[]): void
  unsubscribe(channels: string | string[]): void
  /** The channels the client holds. */
  channels(): string[]
  /** Handle every server message of a type (publications exactly once). `'reset'`
   *  gets `{channel, reason}` when a channel's state must be reloaded. */
  on(type: 'reset', handler: Handler<ResetEvent>): Remover
  on<T = any>(type: string, handler: Handler<T>): Remover
  /** Send `{type, data}` (with `channel` at the top level when given); false when the socket is not open. */
  send(type: string, data?: unknown, options?: { channel?: string }): boolean
  onStatus(listener: (status: Status, info: StatusInfo) => void): Remover
  /** The last position seen per channel. */
  positions(): Record<string, Position>
  /** Close for good: never reconnects (until `connect()`). */
  close(): void
  /** Start again after `close()` or `failed`. */
  connect(): void
}

export declare function createRealtime(options: RealtimeOptions): Realtime
export default createRealtime

export declare const BACKOFF_DEFAULTS: Readonly<Required<BackoffOptions>>
/** The delay in ms before reconnect attempt `attempt` (0 for the first). */
export declare function backoffDelay(
  attempt: number,
  options?: BackoffOptions,
  random?: () => number,
): number
/** A JWT's `exp` in ms since the epoch (not verified), or null. */
export declare function tokenExpiry(token: string | null | undefined): number | null
