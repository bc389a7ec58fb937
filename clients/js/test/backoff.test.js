import assert from 'node:assert/strict'
import { describe, test } from 'node:test'

import { backoffDelay, createRealtime } from '../src/index.js'
import { FakeClock, fakeWebSocketClass } from './fakes.js'

function clientWithFakes(options = {}) {
  const clock = new FakeClock()
  const WebSocket = fakeWebSocketClass()
  const statuses = []
  const client = createRealtime({
    url: 'ws://example.test/ws',
    WebSocket,
    timers: clock.timers,
    random: () => 0.5,
    pingInterval: 0,
    ...options,
  })
  client.onStatus((status, info) => statuses.push({ status, ...info }))
  return { client, clock, WebSocket, statuses }
}

describe('backoff', () => {
  test('follows 1, 2, 4, 8, 16 s capped at 30 s', () => {
    const delays = [0, 1, 2, 3, 4, 5, 6, 20].map((attempt) => backoffDelay(attempt, {}, () => 0.5))
    assert.deepEqual(delays, [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000])
  })

  test('spreads each delay by the jitter, never past the cap', () => {
    assert.equal(backoffDelay(0, {}, () => 0), 800)
    assert.equal(backoffDelay(0, {}, () => 0.999999), 1200)
    assert.equal(backoffDelay(3, {}, () => 0), 6400)
    assert.equal(backoffDelay(5, {}, () => 0.999999), 30000)
    assert.equal(backoffDelay(2, { initial: 100, max: 250, jitter: 0 }), 250)
  })

  test('the client waits out each delay before reconnecting', () => {
    const { clock, WebSocket, statuses } = clientWithFakes()
    const waits = []
    for (let attempt = 0; attempt < 7; attempt++) {
      WebSocket.last.serverClose(1006)
      const { retryIn } = statuses.at(-1)
      waits.push(retryIn)
      const before = WebSocket.instances.length
      clock.advance(retryIn - 1)
      assert.equal(WebSocket.instances.length, before, 'reconnected before the delay')
      clock.advance(1)
      assert.equal(WebSocket.instances.length, before + 1, 'did not reconnect after the delay')
    }
    assert.deepEqual(waits, [1000, 2000, 4000, 8000, 16000, 30000, 30000])
  })

  test('resets after a successful connect', () => {
    const { clock, WebSocket, statuses } = clientWithFakes()
    for (let attempt = 0; attempt < 3; attempt++) {
      WebSocket.last.serverClose(1006)
      clock.advance(statuses.at(-1).retryIn)
    }
    WebSocket.last.accept()
    assert.equal(statuses.at(-1).status, 'connected')
    WebSocket.last.serverClose(1011)
    assert.equal(statuses.at(-1).retryIn, 1000)
  })

  test('gives up after maxAttempts reconnects', () => {
    const { clock, WebSocket, statuses } = clientWithFakes({ backoff: { maxAttempts: 2 } })
    WebSocket.last.serverClose(1006)
    clock.advance(statuses.at(-1).retryIn)
    WebSocket.last.serverClose(1006)
    clock.advance(statuses.at(-1).retryIn)
    WebSocket.last.serverClose(1006)
    assert.equal(statuses.at(-1).status, 'failed')
    clock.advance(120000)
    assert.equal(WebSocket.instances.length, 3)
  })

  test('every other close code backs off', () => {
    for (const code of [4008, 4009, 4013, 4503, 1006, 1011, 1001]) {
      const { clock, WebSocket, statuses } = clientWithFakes()
      WebSocket.last.accept()
      WebSocket.last.serverClose(code)
      assert.deepEqual(
        [statuses.at(-1).status, statuses.at(-1).code, statuses.at(-1).retryIn],
        ['disconnected', code, 1000],
      )
      clock.advance(1000)
      assert.equal(WebSocket.instances.length, 2, `no reconnect after ${code}`)
    }
  })

  test('close() by the app never reconnects', () => {
    const { client, clock, WebSocket, statuses } = clientWithFakes()
    WebSocket.last.accept()
    client.close()
    assert.equal(client.status, 'disconnected')
    assert.equal(WebSocket.last.closedWith, 1000)
    WebSocket.last.serverClose(1000)
    clock.advance(120000)
    assert.equal(WebSocket.instances.length, 1)
    assert.equal(statuses.filter((s) => s.status === 'connecting').length, 0)
  })

  test('close() during the wait cancels the reconnect', () => {
    const { client, clock, WebSocket } = clientWithFakes()
    WebSocket.last.serverClose(1006)
    client.close()
    clock.advance(120000)
    assert.equal(WebSocket.instances.length, 1)
  })
})
