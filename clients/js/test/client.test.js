import assert from 'node:assert/strict'
import { describe, test } from 'node:test'

import { createRealtime, tokenExpiry } from '../src/index.js'
import { FakeClock, fakeJwt, fakeWebSocketClass, flush, publication } from './fakes.js'

function setup(options = {}) {
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
  const received = []
  client.on('tick', (data, message) => received.push(message.id))
  const resets = []
  client.on('reset', (data) => resets.push(data))
  return { client, clock, WebSocket, statuses, received, resets }
}

function subscribedReply(positions) {
  return { type: 'subscribed', data: { channels: Object.keys(positions), positions } }
}

describe('subscriptions', () => {
  test('channels subscribed while disconnected are sent once connected', () => {
    const { client, WebSocket } = setup()
    client.subscribe('jobs')
    client.subscribe(['payments', 'jobs'])
    WebSocket.last.open()
    assert.deepEqual(WebSocket.last.framesOfType('subscribe'), [])
    WebSocket.last.receive({ type: 'connected', data: {} })
    assert.deepEqual(WebSocket.last.framesOfType('subscribe'), [
      { type: 'subscribe', channels: ['jobs', 'payments'] },
    ])
  })

  test('subscribe and unsubscribe while connected go out at once', () => {
    const { client, WebSocket } = setup()
    WebSocket.last.accept()
    client.subscribe('jobs')
    client.subscribe('jobs')
    client.unsubscribe(['jobs', 'never'])
    assert.deepEqual(WebSocket.last.sent, [
      { type: 'subscribe', channels: ['jobs'] },
      { type: 'unsubscribe', channels: ['jobs'] },
    ])
    assert.deepEqual(client.channels(), [])
  })

  test('a channel the server forbids is forgotten', () => {
    const { client, WebSocket, clock, statuses } = setup()
    client.subscribe(['jobs', 'payments'])
    WebSocket.last.accept()
    WebSocket.last.receive({ type: 'error', data: { code: 'forbidden', message: 'no', channel: 'payments' } })
    assert.deepEqual(client.channels(), ['jobs'])
    WebSocket.last.serverClose(1006)
    clock.advance(statuses.at(-1).retryIn)
    WebSocket.last.accept()
    assert.deepEqual(WebSocket.last.framesOfType('subscribe')[0].channels, ['jobs'])
  })
})

describe('resume', () => {
  test('resubscribes with since and hands each publication over exactly once', () => {
    const { client, WebSocket, clock, statuses, received } = setup()
    client.subscribe('jobs')
    WebSocket.last.accept()
    WebSocket.last.receive(subscribedReply({ jobs: { offset: 0, epoch: 'e1' } }))
    WebSocket.last.receive(publication('jobs', 1))
    WebSocket.last.receive(publication('jobs', 2))
    assert.deepEqual(client.positions(), { jobs: { offset: 2, epoch: 'e1' } })

    WebSocket.last.serverClose(1006)
    clock.advance(statuses.at(-1).retryIn)
    WebSocket.last.accept()
    assert.deepEqual(WebSocket.last.framesOfType('subscribe'), [
      { type: 'subscribe', channels: ['jobs'], since: { jobs: { offset: 2, epoch: 'e1' } } },
    ])
    WebSocket.last.receive(
      subscribedReply({ jobs: { offset: 4, epoch: 'e1', recovered: true } }),
    )
    WebSocket.last.receive(publication('jobs', 2)) // already seen
    WebSocket.last.receive(publication('jobs', 3))
    WebSocket.last.receive(publication('jobs', 4))
    WebSocket.last.receive(publication('jobs', 3)) // again
    assert.deepEqual(received, ['jobs-1', 'jobs-2', 'jobs-3', 'jobs-4'])
    assert.deepEqual(client.positions(), { jobs: { offset: 4, epoch: 'e1' } })
  })

  test('one publication sent to two channels reaches the handlers once', () => {
    const { client, WebSocket, received } = setup()
    client.subscribe(['jobs', 'payments'])
    WebSocket.last.accept()
    WebSocket.last.receive(publication('jobs', 7, { id: 'same' }))
    WebSocket.last.receive(publication('payments', 3, { id: 'same' }))
    assert.deepEqual(received, ['same'])
    assert.deepEqual(client.positions(), {
      jobs: { offset: 7, epoch: 'e1' },
      payments: { offset: 3, epoch: 'e1' },
    })
  })

  test('a new epoch starts the channel again', () => {
    const { client, WebSocket, received } = setup()
    client.subscribe('jobs')
    WebSocket.last.accept()
    WebSocket.last.receive(publication('jobs', 5))
    WebSocket.last.receive(publication('jobs', 1, { epoch: 'e2', id: 'fresh' }))
    assert.deepEqual(received, ['jobs-5', 'fresh'])
    assert.deepEqual(client.positions().jobs, { offset: 1, epoch: 'e2' })
  })

  test('recovered:false reaches on("reset") and takes the server position', () => {
    const { client, WebSocket, clock, statuses, resets } = setup()
    client.subscribe(['jobs', 'payments'])
    WebSocket.last.accept()
    WebSocket.last.receive(publication('jobs', 3))
    WebSocket.last.receive(publication('payments', 1))
    WebSocket.last.serverClose(1006)
    clock.advance(statuses.at(-1).retryIn)
    WebSocket.last.accept()
    WebSocket.last.receive(
      subscribedReply({
        jobs: { offset: 9, epoch: 'e9', recovered: false },
        payments: { offset: 1, epoch: 'e1', recovered: true },
      }),
    )
    assert.deepEqual(resets, [{ channel: 'jobs', reason: 'not_recovered' }])
    assert.deepEqual(client.positions(), {
      jobs: { offset: 9, epoch: 'e9' },
      payments: { offset: 1, epoch: 'e1' },
    })
  })

  test('resync reaches on("reset") and moves the position', () => {
    const { client, WebSocket, resets } = setup()
    const raw = []
    client.on('resync', (data, message) => raw.push(message.channel))
    client.subscribe('jobs')
    WebSocket.last.accept()
    WebSocket.last.receive(publication('jobs', 3))
    WebSocket.last.receive({ type: 'resync', channel: 'jobs', data: { offset: 57, epoch: 'e1' } })
    assert.deepEqual(resets, [{ channel: 'jobs', reason: 'resync' }])
    assert.deepEqual(raw, ['jobs'])
    assert.deepEqual(client.positions().jobs, { offset: 57, epoch: 'e1' })
  })

  test('handlers get (data, message) and can be removed', () => {
    const { client, WebSocket } = setup()
    const seen = []
    const remove = client.on('job_created', (data, message) => seen.push([data.title, message.channel]))
    WebSocket.last.accept()
    WebSocket.last.receive(publication('jobs', 1, { type: 'job_created', data: { title: 'Web' } }))
    remove()
    WebSocket.last.receive(publication('jobs', 2, { type: 'job_created', data: { title: 'Late' } }))
    assert.deepEqual(seen, [['Web', 'jobs']])
  })
})

describe('authentication', () => {
  test('the token goes in the first frame, never in the URL', () => {
    const token = fakeJwt({ exp: 4_000_000_000, user_id: 7 })
    const { client, WebSocket } = setup({ token })
    client.subscribe('jobs')
    WebSocket.last.open()
    assert.equal(WebSocket.last.url, 'ws://example.test/ws')
    assert.deepEqual(WebSocket.last.sent, [{ type: 'auth', token }])
    WebSocket.last.receive({ type: 'connected', data: {} })
    assert.equal(client.isConnected, false, 'connected before the token was accepted')
    WebSocket.last.receive({ type: 'authenticated', data: { user_id: 7, user_type: 'worker' } })
    assert.equal(client.isConnected, true)
    assert.equal(client.userId, 7)
    assert.deepEqual(WebSocket.last.sent[1], { type: 'subscribe', channels: ['jobs'] })
  })

  test('the personal channel is resumed with since too', () => {
    const { client, WebSocket, clock, statuses, received } = setup({ token: 'opaque' })
    WebSocket.last.open()
    WebSocket.last.receive({ type: 'authenticated', data: { user_id: 7, user_type: 'worker' } })
    WebSocket.last.receive(publication('user.7', 4))
    WebSocket.last.serverClose(1006)
    clock.advance(statuses.at(-1).retryIn)
    WebSocket.last.open()
    WebSocket.last.receive({ type: 'authenticated', data: { user_id: 7, user_type: 'worker' } })
    assert.deepEqual(WebSocket.last.framesOfType('subscribe'), [
      { type: 'subscribe', channels: ['user.7'], since: { 'user.7': { offset: 4, epoch: 'e1' } } },
    ])
    WebSocket.last.receive(publication('user.7', 4))
    WebSocket.last.receive(publication('user.7', 5))
    assert.deepEqual(received, ['user.7-4', 'user.7-5'])
  })

  test('4001 with getToken: a fresh token at once; a second 4001 fails', async () => {
    let calls = 0
    const getToken = async () => `token-${++calls}`
    const { WebSocket, statuses } = setup({ getToken })
    await flush()
    WebSocket.last.open()
    assert.deepEqual(WebSocket.last.sent, [{ type: 'auth', token: 'token-1' }])
    WebSocket.last.receive({ type: 'error', data: { code: 'unauthorized', message: 'Unauthorized' } })
    WebSocket.last.serverClose(4001)
    await flush()
    assert.equal(WebSocket.instances.length, 2, 'did not reconnect at once')
    WebSocket.last.open()
    assert.deepEqual(WebSocket.last.sent, [{ type: 'auth', token: 'token-2' }])
    WebSocket.last.serverClose(4001)
    await flush()
    assert.equal(WebSocket.instances.length, 2)
    assert.equal(statuses.at(-1).status, 'failed')
    assert.equal(statuses.at(-1).code, 4001)
  })

  test('4001 after a good session fetches a fresh token again', async () => {
    let calls = 0
    const { WebSocket, statuses } = setup({ getToken: async () => `token-${++calls}` })
    for (let round = 1; round <= 3; round++) {
      await flush()
      WebSocket.last.open()
      WebSocket.last.receive({ type: 'authenticated', data: { user_id: 7 } })
      WebSocket.last.serverClose(4001) // token_expired
    }
    await flush()
    assert.equal(WebSocket.instances.length, 4)
    assert.notEqual(statuses.at(-1).status, 'failed')
  })

  test('4001 without getToken fails', () => {
    const { WebSocket, statuses, clock } = setup({ token: 'bad' })
    WebSocket.last.open()
    WebSocket.last.serverClose(4001)
    clock.advance(120000)
    assert.equal(statuses.at(-1).status, 'failed')
    assert.equal(WebSocket.instances.length, 1)
  })

  test('4029 fails at once, with no reconnect', () => {
    const { WebSocket, statuses, clock } = setup({ token: 'ok' })
    WebSocket.last.open()
    WebSocket.last.receive({ type: 'error', data: { code: 'too_many_connections', message: 'x' } })
    WebSocket.last.serverClose(4029)
    clock.advance(120000)
    assert.deepEqual(
      [statuses.at(-1).status, statuses.at(-1).code, statuses.at(-1).error.code],
      ['failed', 4029, 'too_many_connections'],
    )
    assert.equal(WebSocket.instances.length, 1)
  })

  test('connect() starts again after failed', () => {
    const { client, WebSocket } = setup({ token: 'ok' })
    WebSocket.last.serverClose(4029)
    assert.equal(client.status, 'failed')
    client.connect()
    assert.equal(client.status, 'connecting')
    assert.equal(WebSocket.instances.length, 2)
  })

  test('refreshes the token with an auth frame shortly before exp', async () => {
    const clock = new FakeClock()
    const now = clock.time / 1000
    const tokens = [fakeJwt({ exp: now + 120 }), fakeJwt({ exp: now + 240 })]
    let calls = 0
    const WebSocket = fakeWebSocketClass()
    createRealtime({
      url: 'ws://example.test/ws',
      WebSocket,
      timers: clock.timers,
      pingInterval: 0,
      refreshMargin: 30000,
      getToken: async () => tokens[calls++],
    })
    await flush()
    WebSocket.last.open()
    WebSocket.last.receive({ type: 'authenticated', data: { user_id: 7 } })
    clock.advance(89999)
    await flush()
    assert.equal(calls, 1, 'refreshed too early')
    clock.advance(1)
    await flush()
    assert.equal(calls, 2)
    assert.deepEqual(WebSocket.last.sent.at(-1), { type: 'auth', token: tokens[1] })
    assert.equal(tokenExpiry(tokens[1]), (now + 240) * 1000)
  })
})

describe('keepalive', () => {
  test('pings every pingInterval and stays while the server answers', () => {
    const { clock, WebSocket } = setup({ pingInterval: 1000 })
    WebSocket.last.accept()
    for (let i = 0; i < 5; i++) {
      clock.advance(1000)
      const ping = WebSocket.last.framesOfType('ping').at(-1)
      WebSocket.last.receive({ type: 'pong', data: ping.data })
    }
    assert.equal(WebSocket.last.framesOfType('ping').length, 5)
    assert.equal(WebSocket.instances.length, 1)
  })

  test('no message for twice pingInterval: close and reconnect', () => {
    const { clock, WebSocket, statuses } = setup({ pingInterval: 1000 })
    WebSocket.last.accept()
    clock.advance(1999)
    assert.equal(WebSocket.last.terminated, false)
    clock.advance(1)
    assert.equal(WebSocket.instances[0].terminated, true)
    assert.deepEqual([statuses.at(-1).status, statuses.at(-1).reason], ['disconnected', 'keepalive timeout'])
    clock.advance(statuses.at(-1).retryIn)
    assert.equal(WebSocket.instances.length, 2)
  })

  test('onStatus returns a remover', () => {
    const { client, WebSocket } = setup()
    const seen = []
    const remove = client.onStatus((status) => seen.push(status))
    WebSocket.last.accept()
    remove()
    WebSocket.last.serverClose(1006)
    assert.deepEqual(seen, ['connected'])
    assert.equal(client.status, 'disconnected')
  })

  test('send() goes out only while open', () => {
    const { client, WebSocket } = setup()
    assert.equal(client.send('ping'), false)
    WebSocket.last.accept()
    assert.equal(client.send('ping'), true)
    assert.equal(client.send('presence', undefined), true)
    assert.deepEqual(WebSocket.last.sent, [{ type: 'ping' }, { type: 'presence' }])
  })

  test('send() with a channel puts it at the top level of the frame', () => {
    const { client, WebSocket } = setup()
    WebSocket.last.accept()
    assert.equal(client.send('typing', { state: 'typing' }, { channel: 'job.12' }), true)
    assert.equal(client.send('ping', undefined, {}), true)
    assert.throws(() => client.send('typing', {}, { channel: '' }), TypeError)
    assert.deepEqual(WebSocket.last.sent, [
      { type: 'typing', channel: 'job.12', data: { state: 'typing' } },
      { type: 'ping' },
    ])
  })
})
