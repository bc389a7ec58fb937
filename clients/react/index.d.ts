import type { Context, ReactNode } from 'react'
import type { Handler, Position, RealtimeOptions, Remover, ResetEvent, Status } from '@paychain/realtime'

export type WebSocketProviderProps = RealtimeOptions & { children?: ReactNode }

/** Opens one realtime connection for its children (a new one when `url` or `token` changes). */
export declare function WebSocketProvider(props: WebSocketProviderProps): ReactNode

export interface WebSocketContextValue {
  /** The seed's flag: true while the socket is open and (with a token) authenticated. */
  isConnected: boolean
  status: Status
  /** Remembered across reconnects and provider re-connections. */
  subscribe(channels: string | string[]): void
  unsubscribe(channels: string | string[]): void
  /** Returns the remover; publications reach the handler exactly once. */
  on(type: 'reset', handler: Handler<ResetEvent>): Remover
  on<T = any>(type: string, handler: Handler<T>): Remover
  /** False when the socket is not open. */
  send(type: string, data?: unknown): boolean
  positions(): Record<string, Position>
}

/** The nearest provider's connection; throws outside a WebSocketProvider. */
export declare function useWebSocket(): WebSocketContextValue

export declare const WebSocketContext: Context<WebSocketContextValue | null>
