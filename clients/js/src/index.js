/**
 * @paychain/realtime: the client of the PayChain socket protocol (README,
 * "The socket protocol"). One socket; reconnects with backoff; resubscribes
 * with `since` so that every publication reaches the handlers exactly once;
 * authenticates with an `auth` frame (never the URL) and refreshes its token
 * before it expires.
 */

import { BACKOFF_DEFAULTS, backoffDelay } from './backoff.js'
import { tokenExpiry } from './jwt.js'
import { RecentIds } from './recent.js'

export { backoffDelay, BACKOFF_DEFAULTS } from './backoff.js'
export { tokenExpiry } from './jwt.js'

export const Status = Object.freeze({
  CONNECTING: 'connecting',
  CONNECTED: 'connected',
  DISCONNECTED: 'disconnected',
  FAILED: 'failed',
})

/** The server's close codes (realtime/protocol.py, CloseCode). */
export const CloseCode = Object.freeze({
  NORMAL: 1000,
  ABNORMAL: 1006,
  UNAUTHORIZED: 4001,
  RATE_LIMITED: 4008,
  SLOW_CONSUMER: 4009,
  MESSAGE_TOO_BIG: 4013,
  TOO_MANY_CONNECTIONS: 4029,
  SERVICE_UNAVAILABLE: 4503,
})

const OPEN = 1
// setTimeout holds at most 2^31 - 1 ms.
const LONGEST_TIMER = 2 ** 31 - 1
// Not sooner than this between two token refreshes.
const MIN_REFRESH_DELAY = 1000
const REFRESH_RETRY = 5000
// Server messages that are not publications, whatever they carry.
const CONTROL_TYPES = new Set([
  'connected',
  'authenticated',
  'subscribed',
  'unsubscribed',
  'pong',
  'presence',
  'error',
  'resync',
  'user_online',
  'user_offline',
])
// Errors about one channel that the server will refuse again: forget the channel.
const CHANNEL_REFUSALS = new Set(['forbidden', 'invalid_channel'])

function channelList(channels) {
  const list = typeof channels === 'string' ? [channels] : Array.from(channels ?? [])
  for (const name of list) {
    if (typeof name !== 'string' || name === '') {
      throw new TypeError('Channel names are non-empty strings')
    }
  }
  return [...new Set(list)]
}

function report(error) {
  if (typeof globalThis.reportError === 'function') globalThis.reportError(error)
  else console.error(error)
}

/**
 * Open a realtime connection. See index.d.ts for the options and the
 * returned object.
 */
export function createRealtime(options = {}) {
  const { url, token = null, getToken = null } = options
  if (typeof url !== 'string' || url === '') {
    throw new TypeError('createRealtime: `url` is required (ws://host/ws)')
  }
  if (token != null && getToken != null) {
    throw new TypeError('createRealtime: pass `token` or `getToken`, not both')
  }
  const WebSocketImpl = options.WebSocket ?? globalThis.WebSocket
  if (typeof WebSocketImpl !== 'function') {
    throw new TypeError(
      'createRealtime: no WebSocket implementation; pass the `WebSocket` option (in Node 20, `ws`)',
    )
  }
  const backoff = { ...BACKOFF_DEFAULTS, ...options.backoff }
  const pingInterval = options.pingInterval ?? 25000
  const refreshMargin = options.refreshMargin ?? 30000
  const clock = {
    setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
    clearTimeout: (handle) => globalThis.clearTimeout(handle),
    now: () => Date.now(),
    ...options.timers,
  }
  const random = options.random ?? Math.random

  let status = Status.CONNECTING
  let socket = null
  // Bumped whenever the current socket is given up: late callbacks of an
  // older socket see a stale generation and do nothing.
  let generation = 0
  let attempts = 0
  let retriedUnauthorized = false
  let stopped = false
  let currentToken = null
  let userId = null
  let lastError = null
  let lastMessageAt = 0
  const timers = { reconnect: null, ping: null, watchdog: null, refresh: null }

  const channels = new Set()
  const positionsByChannel = new Map()
  const recent = new RecentIds(options.dedupeWindow ?? 10000)
  const handlers = new Map()
  const statusListeners = new Set()

  // --- small helpers -----------------------------------------------------------------

  function clearTimer(name) {
    if (timers[name] !== null) {
      clock.clearTimeout(timers[name])
      timers[name] = null
    }
  }

  function clearTimers() {
    for (const name of Object.keys(timers)) clearTimer(name)
  }

  function setStatus(next, info = {}) {
    if (status === next && next !== Status.DISCONNECTED) return
    status = next
    for (const listener of [...statusListeners]) {
      try {
        listener(next, info)
      } catch (error) {
        report(error)
      }
    }
  }

  function emit(type, data, message) {
    const set = handlers.get(type)
    if (!set) return
    for (const handler of [...set]) {
      try {
        handler(data, message)
      } catch (error) {
        report(error)
      }
    }
  }

  function sendFrame(frame) {
    if (socket === null || socket.readyState !== OPEN) return false
    socket.send(JSON.stringify(frame))
    return true
  }

  function personalChannel() {
    return userId === null ? null : `user.${userId}`
  }

  function tracked(channel) {
    return channels.has(channel) || channel === personalChannel()
  }

  function subscribeFrame(names) {
    const frame = { type: 'subscribe', channels: names }
    const since = {}
    for (const name of names) {
      const position = positionsByChannel.get(name)
      if (position) since[name] = { offset: position.offset, epoch: position.epoch }
    }
    if (Object.keys(since).length > 0) frame.since = since
    return frame
  }

  // --- the connection's life ------------------------------------------------------------

  async function open() {
    const current = ++generation
    clearTimers()
    setStatus(Status.CONNECTING)
    lastError = null
    let credential = token
    if (getToken) {
      try {
        credential = await getToken()
      } catch (error) {
        lost(current, { code: null, reason: 'getToken failed', error })
        return
      }
    }
    if (current !== generation || stopped) return
    currentToken = credential ?? null
    let ws
    try {
      ws = new WebSocketImpl(url)
    } catch (error) {
      lost(current, { code: null, reason: 'WebSocket constructor failed', error })
      return
    }
    socket = ws
    lastMessageAt = clock.now()
    watch(current)
    ws.onopen = () => {
      if (current !== generation) return
      // The token goes in the first frame, never in the URL (URLs get logged).
      if (currentToken) sendFrame({ type: 'auth', token: currentToken })
      schedulePing(current)
    }
    ws.onmessage = (event) => {
      if (current !== generation) return
      lastMessageAt = clock.now()
      const text = typeof event.data === 'string' ? event.data : String(event.data)
      handle(text)
    }
    ws.onerror = () => {} // a close event follows
    ws.onclose = (event) => {
      if (current !== generation) return
      lost(current, { code: event.code, reason: event.reason })
    }
  }

  /** Give up the current socket without waiting for its close handshake. */
  function abandon(graceful) {
    const ws = socket
    socket = null
    if (ws === null) return
    const noop = () => {}
    ws.onopen = noop
    ws.onmessage = noop
    ws.onclose = noop
    ws.onerror = noop // ws (Node) throws on an 'error' without a listener
    try {
      if (!graceful && typeof ws.terminate === 'function') ws.terminate()
      else ws.close(CloseCode.NORMAL)
    } catch {
      // Already closed.
    }
  }

  function lost(current, info) {
    if (current !== generation) return
    generation++
    clearTimers()
    abandon(false)
    if (stopped) return
    const details = { ...info, error: info.error ?? lastError ?? undefined }
    if (info.code === CloseCode.TOO_MANY_CONNECTIONS) {
      fail(details)
      return
    }
    if (info.code === CloseCode.UNAUTHORIZED) {
      if (getToken && !retriedUnauthorized) {
        // Once, at once, with a fresh token.
        retriedUnauthorized = true
        setStatus(Status.DISCONNECTED, { ...details, retryIn: 0 })
        open()
        return
      }
      fail(details)
      return
    }
    if (attempts >= backoff.maxAttempts) {
      fail(details)
      return
    }
    const delay = backoffDelay(attempts, backoff, random)
    attempts++
    setStatus(Status.DISCONNECTED, { ...details, retryIn: delay, attempt: attempts })
    timers.reconnect = clock.setTimeout(() => {
      timers.reconnect = null
      if (!stopped) open()
    }, delay)
  }

  function fail(info) {
    stopped = true
    generation++
    clearTimers()
    abandon(false)
    setStatus(Status.FAILED, info)
  }

  /** The socket is usable: resubscribe, report `connected`, reset the backoff. */
  function established() {
    attempts = 0
    const names = [...channels]
    const personal = personalChannel()
    if (personal !== null && positionsByChannel.has(personal) && !channels.has(personal)) {
      // The server puts the socket on its personal channel by itself; asking
      // again with `since` recovers what it missed there.
      names.push(personal)
    }
    if (names.length > 0) sendFrame(subscribeFrame(names))
    setStatus(Status.CONNECTED)
  }

  // --- keepalive and token refresh ------------------------------------------------------

  function schedulePing(current) {
    if (!pingInterval) return
    timers.ping = clock.setTimeout(() => {
      timers.ping = null
      if (current !== generation) return
      sendFrame({ type: 'ping', data: { sent: clock.now() } })
      schedulePing(current)
    }, pingInterval)
  }

  function watch(current) {
    if (!pingInterval) return
    const silence = 2 * pingInterval
    const wait = Math.max(0, lastMessageAt + silence - clock.now())
    timers.watchdog = clock.setTimeout(() => {
      timers.watchdog = null
      if (current !== generation) return
      if (clock.now() - lastMessageAt >= silence) {
        lost(current, { code: CloseCode.ABNORMAL, reason: 'keepalive timeout' })
      } else {
        watch(current)
      }
    }, wait)
  }

  function scheduleRefresh(current, delay) {
    clearTimer('refresh')
    if (!getToken) return
    if (delay === undefined) {
      const expiry = tokenExpiry(currentToken)
      if (expiry === null) return
      const remaining = expiry - clock.now()
      delay = Math.max(MIN_REFRESH_DELAY, remaining - Math.min(refreshMargin, remaining / 2))
    }
    const wait = Math.min(delay, LONGEST_TIMER)
    timers.refresh = clock.setTimeout(() => {
      timers.refresh = null
      if (current !== generation) return
      if (wait < delay) scheduleRefresh(current, delay - wait)
      else refresh(current)
    }, wait)
  }

  async function refresh(current) {
    let fresh
    try {
      fresh = await getToken()
    } catch (error) {
      report(error)
      if (current === generation) scheduleRefresh(current, REFRESH_RETRY)
      return
    }
    if (current !== generation || !fresh) return
    currentToken = fresh
    // The server answers `authenticated`, which schedules the next refresh.
    sendFrame({ type: 'auth', token: fresh })
  }

  // --- server messages -----------------------------------------------------------------

  function handle(text) {
    let message
    try {
      message = JSON.parse(text)
    } catch {
      return
    }
    if (message === null || typeof message !== 'object' || typeof message.type !== 'string') return
    const data = message.data ?? {}
    switch (message.type) {
      case 'connected':
        if (!currentToken) established()
        break
      case 'authenticated':
        retriedUnauthorized = false
        if (status !== Status.CONNECTED) {
          if (userId !== null && data.user_id !== userId) {
            positionsByChannel.delete(personalChannel())
          }
          userId = data.user_id ?? null
          established()
        }
        scheduleRefresh(generation)
        break
      case 'subscribed':
        subscribed(data, message)
        break
      case 'resync':
        if (typeof message.channel === 'string' && tracked(message.channel)) {
          positionsByChannel.set(message.channel, { offset: data.offset, epoch: data.epoch })
          emit('reset', { channel: message.channel, reason: 'resync' }, message)
        }
        break
      case 'error':
        lastError = data
        if (CHANNEL_REFUSALS.has(data.code) && typeof data.channel === 'string') {
          channels.delete(data.channel)
          positionsByChannel.delete(data.channel)
        }
        break
      default:
        if (message.id !== undefined && !CONTROL_TYPES.has(message.type) && duplicate(message)) {
          return
        }
    }
    emit(message.type, data, message)
  }

  function subscribed(data, message) {
    for (const [name, position] of Object.entries(data.positions ?? {})) {
      if (!tracked(name)) continue
      if (position.recovered === false) {
        positionsByChannel.set(name, { offset: position.offset, epoch: position.epoch })
        emit('reset', { channel: name, reason: 'not_recovered' }, message)
      } else if (position.recovered !== true && !positionsByChannel.has(name)) {
        positionsByChannel.set(name, { offset: position.offset, epoch: position.epoch })
      }
      // recovered: true: what was missed follows, and moves the position on.
    }
  }

  /** True when this publication already reached the handlers. */
  function duplicate(message) {
    const { channel, offset, epoch } = message
    if (typeof channel === 'string' && Number.isInteger(offset) && typeof epoch === 'string') {
      const last = positionsByChannel.get(channel)
      if (last && last.epoch === epoch && offset <= last.offset) return true
      if (tracked(channel)) positionsByChannel.set(channel, { offset, epoch })
    }
    return recent.seen(message.id)
  }

  // --- the public object --------------------------------------------------------------

  const client = {
    get isConnected() {
      return status === Status.CONNECTED
    },
    get status() {
      return status
    },
    get userId() {
      return userId
    },

    subscribe(input) {
      const added = channelList(input).filter((name) => !channels.has(name))
      for (const name of added) channels.add(name)
      if (added.length > 0 && status === Status.CONNECTED) sendFrame(subscribeFrame(added))
    },

    unsubscribe(input) {
      const removed = channelList(input).filter((name) => channels.has(name))
      for (const name of removed) {
        channels.delete(name)
        positionsByChannel.delete(name)
      }
      if (removed.length > 0 && status === Status.CONNECTED) {
        sendFrame({ type: 'unsubscribe', channels: removed })
      }
    },

    channels() {
      return [...channels]
    },

    on(type, handler) {
      if (typeof handler !== 'function') throw new TypeError('on(type, handler): handler must be a function')
      let set = handlers.get(type)
      if (!set) handlers.set(type, (set = new Set()))
      // Wrapped so that the same function registered twice is two handlers.
      const entry = (data, message) => handler(data, message)
      set.add(entry)
      return () => {
        set.delete(entry)
        if (set.size === 0 && handlers.get(type) === set) handlers.delete(type)
      }
    },

    send(type, data, options = {}) {
      const frame = { type }
      // Frames about one channel (chat_send, typing, chat_read) carry it at the top level.
      if (options.channel !== undefined) {
        if (typeof options.channel !== 'string' || options.channel === '') {
          throw new TypeError('send(type, data, {channel}): channel must be a non-empty string')
        }
        frame.channel = options.channel
      }
      if (data !== undefined) frame.data = data
      return sendFrame(frame)
    },

    onStatus(listener) {
      const entry = (next, info) => listener(next, info)
      statusListeners.add(entry)
      return () => statusListeners.delete(entry)
    },

    positions() {
      const result = {}
      for (const [name, position] of positionsByChannel) result[name] = { ...position }
      return result
    },

    close() {
      stopped = true
      generation++
      clearTimers()
      abandon(true)
      setStatus(Status.DISCONNECTED, { code: CloseCode.NORMAL, reason: 'closed by the client' })
    },

    connect() {
      if (!stopped) return
      stopped = false
      attempts = 0
      retriedUnauthorized = false
      open()
    },
  }

  open()
  return client
}

export default createRealtime
