/**
 * @paychain/realtime-react: the seed's `WebSocketContext` on @paychain/realtime.
 *
 *   <WebSocketProvider url="ws://localhost:8080/ws" getToken={getToken}>
 *     <App />
 *   </WebSocketProvider>
 *
 *   const { isConnected, subscribe, unsubscribe, on, send } = useWebSocket()
 *
 * `subscribe`, `unsubscribe`, `on` and `send` are stable for the provider's
 * life and work before the socket is open (children's effects run before the
 * provider's): channels and handlers are kept by the provider and carried
 * over to each client it makes (a new one when `url` or `token` changes).
 */

import { createContext, createElement, useContext, useEffect, useMemo, useRef, useState } from 'react'

import { createRealtime } from '@paychain/realtime'

const WebSocketContext = createContext(null)

function channelList(channels) {
  return typeof channels === 'string' ? [channels] : [...channels]
}

/** What the provider keeps across clients: channels, handlers, the current client. */
function createBridge() {
  const channels = new Set()
  const handlers = new Map() // type -> Set of handlers
  const detachers = new Map() // type -> remover of the dispatcher on the current client
  let client = null

  function dispatcher(type) {
    return (data, message) => {
      for (const handler of [...(handlers.get(type) ?? [])]) handler(data, message)
    }
  }

  function listen(type) {
    if (client !== null && !detachers.has(type)) detachers.set(type, client.on(type, dispatcher(type)))
  }

  return {
    get client() {
      return client
    },
    attach(next) {
      client = next
      if (channels.size > 0) client.subscribe([...channels])
      for (const type of handlers.keys()) listen(type)
    },
    detach() {
      for (const remove of detachers.values()) remove()
      detachers.clear()
      client = null
    },
    subscribe(input) {
      const names = channelList(input)
      for (const name of names) channels.add(name)
      client?.subscribe(names)
    },
    unsubscribe(input) {
      const names = channelList(input)
      for (const name of names) channels.delete(name)
      client?.unsubscribe(names)
    },
    on(type, handler) {
      let set = handlers.get(type)
      if (!set) handlers.set(type, (set = new Set()))
      const entry = (data, message) => handler(data, message)
      set.add(entry)
      listen(type)
      return () => {
        set.delete(entry)
        if (set.size === 0 && handlers.get(type) === set) {
          handlers.delete(type)
          detachers.get(type)?.()
          detachers.delete(type)
        }
      }
    },
    send(type, data) {
      return client?.send(type, data) ?? false
    },
    positions() {
      return client?.positions() ?? {}
    },
  }
}

/**
 * Props: `url`, `token` or `getToken`, and any option of createRealtime
 * (`WebSocket`, `backoff`, `pingInterval`, ...). A new connection is made when
 * `url`, `token` or whether there is a `getToken` changes; the latest
 * `getToken` is always the one called.
 */
export function WebSocketProvider({ url, token, getToken, children, ...options }) {
  const [bridge] = useState(createBridge)
  const [status, setStatus] = useState('connecting')
  const getTokenRef = useRef(getToken)
  getTokenRef.current = getToken
  const optionsRef = useRef(options)
  optionsRef.current = options
  const hasGetToken = typeof getToken === 'function'

  useEffect(() => {
    const client = createRealtime({
      ...optionsRef.current,
      url,
      ...(hasGetToken ? { getToken: () => getTokenRef.current() } : { token: token ?? null }),
    })
    bridge.attach(client)
    setStatus(client.status)
    const removeStatus = client.onStatus((next) => setStatus(next))
    return () => {
      removeStatus()
      bridge.detach()
      client.close()
    }
  }, [bridge, url, token, hasGetToken])

  const value = useMemo(
    () => ({
      status,
      isConnected: status === 'connected',
      subscribe: bridge.subscribe,
      unsubscribe: bridge.unsubscribe,
      on: bridge.on,
      send: bridge.send,
      positions: bridge.positions,
    }),
    [bridge, status],
  )

  return createElement(WebSocketContext.Provider, { value }, children)
}

/** `{ isConnected, status, subscribe, unsubscribe, on, send, positions }` of the nearest provider. */
export function useWebSocket() {
  const value = useContext(WebSocketContext)
  if (value === null) throw new Error('useWebSocket() must be used inside a <WebSocketProvider>')
  return value
}

export { WebSocketContext }
