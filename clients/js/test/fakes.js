/** A scripted WebSocket and a manual clock, for the client's unit tests. */

export class FakeClock {
  constructor(start = 1_700_000_000_000) {
    this.time = start
    this.nextId = 1
    this.pending = new Map()
    this.timers = {
      setTimeout: (fn, ms) => {
        const id = this.nextId++
        this.pending.set(id, { at: this.time + Math.max(0, ms), fn, ms })
        return id
      },
      clearTimeout: (id) => this.pending.delete(id),
      now: () => this.time,
    }
  }

  /** Move time on by `ms`, running every timer that falls due, in order. */
  advance(ms) {
    const until = this.time + ms
    for (;;) {
      let next = null
      for (const [id, timer] of this.pending) {
        if (timer.at <= until && (next === null || timer.at < next[1].at)) next = [id, timer]
      }
      if (next === null) break
      this.pending.delete(next[0])
      this.time = next[1].at
      next[1].fn()
    }
    this.time = until
  }
}

export function fakeWebSocketClass() {
  class FakeWebSocket {
    static instances = []

    constructor(url) {
      this.url = url
      this.readyState = 0
      this.sent = []
      this.closedWith = null
      this.terminated = false
      this.onopen = null
      this.onmessage = null
      this.onclose = null
      this.onerror = null
      FakeWebSocket.instances.push(this)
    }

    static get last() {
      return FakeWebSocket.instances.at(-1)
    }

    send(text) {
      if (this.readyState !== 1) throw new Error('not open')
      this.sent.push(JSON.parse(text))
    }

    close(code) {
      this.closedWith = code ?? null
      this.readyState = 3
    }

    terminate() {
      this.terminated = true
      this.readyState = 3
    }

    // --- the server's side ---
    open() {
      this.readyState = 1
      this.onopen?.({})
    }

    receive(message) {
      this.onmessage?.({ data: JSON.stringify(message) })
    }

    /** Open, then the server's `connected`. */
    accept() {
      this.open()
      this.receive({ type: 'connected', data: { connection_id: 'c' } })
    }

    serverClose(code, reason = '') {
      this.readyState = 3
      this.onclose?.({ code, reason })
    }

    framesOfType(type) {
      return this.sent.filter((frame) => frame.type === type)
    }
  }
  return FakeWebSocket
}

/** A JWT-shaped token (unsigned) whose payload says `exp` (seconds). */
export function fakeJwt(claims) {
  const encode = (value) => Buffer.from(JSON.stringify(value)).toString('base64url')
  return `${encode({ alg: 'HS256', typ: 'JWT' })}.${encode(claims)}.signature`
}

/** Let pending promise callbacks (an awaited getToken) run. */
export const flush = () => new Promise((done) => setImmediate(done))

export function publication(channel, offset, { id = `${channel}-${offset}`, epoch = 'e1', type = 'tick', data } = {}) {
  return { type, data: data ?? { n: offset }, timestamp: '2025-11-01T12:00:00.000Z', channel, id, offset, epoch }
}
