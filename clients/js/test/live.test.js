// Against real servers: the production launcher (uvicorn) on real Redis.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'

import WebSocket from 'ws'

import { Deployment, sleep, waitFor } from '../../testing/server.mjs'
import { createRealtime } from '../src/index.js'

const FAST = { backoff: { initial: 100, max: 500 }, pingInterval: 5000 }

function collect(client, type) {
  const messages = []
  client.on(type, (data, message) => messages.push(message))
  return messages
}

// One deployment: two server processes on one Redis and one database. Each
// user may hold one socket, for the 4029 test (anonymous sockets are not counted).
let deployment
let first
let second

before(async () => {
  deployment = new Deployment({ env: { REALTIME_MAX_SOCKETS_PER_USER: '1' } })
  first = await deployment.start()
  second = await deployment.start()
})
after(() => deployment?.close())

describe('a server killed and restarted', () => {
  test('publications made meanwhile through another process arrive exactly once, in order', async () => {
    const client = createRealtime({ url: first.wsUrl, WebSocket, ...FAST })
    try {
      const ticks = collect(client, 'tick')
      const resets = collect(client, 'reset')
      const statuses = []
      client.onStatus((status) => statuses.push(status))
      client.subscribe('jobs')
      await waitFor(() => client.positions().jobs, { what: 'subscribed' })
      for (const n of [1, 2, 3]) await first.publish({ type: 'tick', channel: 'jobs', data: { n } })
      await waitFor(() => ticks.length === 3, { what: 'the first three' })

      await first.kill()
      await waitFor(() => statuses.includes('disconnected'), { what: 'disconnected' })
      for (const n of [4, 5, 6]) await second.publish({ type: 'tick', channel: 'jobs', data: { n } })
      await first.start()
      await waitFor(() => client.isConnected, { what: 'reconnected' })
      await waitFor(() => ticks.length >= 6, { what: 'the ones published meanwhile' })
      for (const n of [7, 8]) await second.publish({ type: 'tick', channel: 'jobs', data: { n } })
      await waitFor(() => ticks.length >= 8, { what: 'live ones after the restart' })
      await sleep(300) // room for a duplicate to show up

      assert.deepEqual(
        ticks.map((message) => message.data.n),
        [1, 2, 3, 4, 5, 6, 7, 8],
      )
      assert.equal(new Set(ticks.map((message) => message.id)).size, 8)
      assert.deepEqual(
        ticks.map((message) => message.offset),
        ticks.map((message, index) => ticks[0].offset + index),
      )
      assert.deepEqual(resets, [])
      assert.deepEqual(client.positions().jobs, { offset: ticks[7].offset, epoch: ticks[7].epoch })
    } finally {
      client.close()
    }
  })

  test('a channel subscribed while disconnected is subscribed on reconnect', async () => {
    const client = createRealtime({ url: first.wsUrl, WebSocket, ...FAST })
    try {
      const news = collect(client, 'news')
      await waitFor(() => client.isConnected, { what: 'connected' })
      await first.kill()
      await waitFor(() => !client.isConnected, { what: 'disconnected' })
      client.subscribe('announcements')
      await first.start()
      await waitFor(() => client.positions().announcements, { what: 'subscribed after reconnect' })
      await second.publish({ type: 'news', channel: 'announcements', data: { text: 'hi' } })
      await waitFor(() => news.length === 1, { what: 'the announcement' })
      assert.equal(news[0].data.text, 'hi')
    } finally {
      client.close()
    }
  })
})

describe('authentication and close codes', () => {

  /** The ws class, recording every URL a socket was opened with. */
  function recordingWebSocket(urls) {
    return class extends WebSocket {
      constructor(url, ...rest) {
        urls.push(url)
        super(url, ...rest)
      }
    }
  }

  test('getToken authenticates with the first frame, never the URL', async () => {
    const user = await second.register()
    const urls = []
    const client = createRealtime({
      url: second.wsUrl,
      getToken: user.getToken,
      WebSocket: recordingWebSocket(urls),
      ...FAST,
    })
    try {
      const notes = collect(client, 'note')
      await waitFor(() => client.isConnected, { what: 'connected' })
      assert.equal(client.userId, user.id)
      await second.publish({ type: 'note', user_id: user.id, data: { text: 'for you' } })
      await waitFor(() => notes.length === 1, { what: 'the personal message' })
      assert.equal(notes[0].channel, `user.${user.id}`)
      assert.deepEqual(urls, [second.wsUrl])
    } finally {
      client.close()
    }
  })

  test('4001 with getToken: one fresh token at once, then connected', async () => {
    const user = await second.register()
    const tokens = ['not-a-token']
    let calls = 0
    const client = createRealtime({
      url: second.wsUrl,
      WebSocket,
      getToken: async () => (calls++ === 0 ? tokens[0] : user.getToken()),
      ...FAST,
    })
    try {
      const history = []
      client.onStatus((status, info) => history.push([status, info.code ?? null, info.error?.code ?? null]))
      await waitFor(() => client.isConnected, { what: 'connected with the fresh token' })
      assert.equal(calls, 2)
      assert.deepEqual(history, [
        ['disconnected', 4001, 'unauthorized'],
        ['connecting', null, null],
        ['connected', null, null],
      ])
    } finally {
      client.close()
    }
  })

  test('a second 4001 in a row: failed', async () => {
    let calls = 0
    const client = createRealtime({
      url: second.wsUrl,
      WebSocket,
      getToken: async () => {
        calls++
        return 'still-not-a-token'
      },
      ...FAST,
    })
    try {
      await waitFor(() => client.status === 'failed', { what: 'failed' })
      await sleep(700) // longer than the backoff: nothing more happens
      assert.equal(calls, 2)
      assert.equal(client.status, 'failed')
    } finally {
      client.close()
    }
  })

  test('4029 (too many connections): failed at once, no reconnect', async () => {
    const user = await second.register()
    const holder = createRealtime({ url: second.wsUrl, WebSocket, getToken: user.getToken, ...FAST })
    let extra = null
    try {
      await waitFor(() => holder.isConnected, { what: 'the first socket' })
      extra = createRealtime({ url: second.wsUrl, WebSocket, getToken: user.getToken, ...FAST })
      const statuses = []
      let info = null
      extra.onStatus((status, details) => {
        statuses.push(status)
        info = details
      })
      await waitFor(() => extra.status === 'failed', { what: 'failed' })
      await sleep(700)
      assert.deepEqual(statuses, ['failed'])
      assert.equal(info.code, 4029)
      assert.equal(info.error.code, 'too_many_connections')
      assert.equal(holder.isConnected, true)
    } finally {
      holder.close()
      extra?.close()
    }
  })
})
