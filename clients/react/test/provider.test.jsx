// The provider against real servers: the production launcher on real Redis.
import { act, cleanup, render, screen, waitFor } from '@testing-library/react'
import { useEffect, useState } from 'react'
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest'
import WebSocket from 'ws'

import { Deployment } from '../../testing/server.mjs'
import { useWebSocket, WebSocketProvider } from '../src/index.js'

const FAST = { backoff: { initial: 100, max: 500 }, pingInterval: 5000 }
const LONG = { timeout: 15000 }

let deployment
let first
let second

beforeAll(async () => {
  deployment = new Deployment()
  first = await deployment.start()
  second = await deployment.start()
})
afterAll(() => deployment?.close())
afterEach(cleanup)

// The seed's "Usage in Components" example, with the toast written to the page.
function JobList() {
  const { isConnected, on, subscribe } = useWebSocket()
  const [toasts, setToasts] = useState([])

  useEffect(() => {
    // Subscribe to job-related events
    subscribe('jobs')

    // Listen for new jobs
    const unsubscribe = on('job_created', (data) => {
      setToasts((shown) => [...shown, `New job: ${data.title}`])
    })

    return () => unsubscribe()
  }, [])

  return (
    <div>
      <div>WebSocket: {isConnected ? '🟢 Connected' : '🔴 Disconnected'}</div>
      <ul>
        {toasts.map((toast, index) => (
          <li key={index}>{toast}</li>
        ))}
      </ul>
    </div>
  )
}

/** Hands the context to the test. */
function Probe({ into }) {
  into.current = useWebSocket()
  return null
}

function renderApp(props, extra = null) {
  const context = { current: null }
  render(
    <WebSocketProvider WebSocket={WebSocket} {...FAST} {...props}>
      <JobList />
      <Probe into={context} />
      {extra}
    </WebSocketProvider>,
  )
  return context
}

async function subscribedTo(context, channel) {
  await waitFor(() => expect(context.current.positions()[channel]).toBeDefined(), LONG)
}

describe('WebSocketProvider and useWebSocket', () => {
  test("the seed's JobList: connected, subscribed, and a job_created shows", async () => {
    const context = renderApp({ url: first.wsUrl })
    await screen.findByText('WebSocket: 🟢 Connected', {}, LONG)
    await subscribedTo(context, 'jobs')
    await first.publish({ type: 'job_created', channel: 'jobs', data: { job_id: 1, title: 'Web Development' } })
    expect(await screen.findByText('New job: Web Development', {}, LONG)).toBeTruthy()
  })

  test('a server restart: 🔴, then 🟢, and what was published meanwhile shows once', async () => {
    const context = renderApp({ url: first.wsUrl })
    await screen.findByText('WebSocket: 🟢 Connected', {}, LONG)
    await subscribedTo(context, 'jobs')

    await act(() => first.kill())
    await screen.findByText('WebSocket: 🔴 Disconnected', {}, LONG)
    await second.publish({ type: 'job_created', channel: 'jobs', data: { job_id: 2, title: 'Logo Design' } })
    await act(() => first.start())
    await screen.findByText('WebSocket: 🟢 Connected', {}, LONG)
    await screen.findByText('New job: Logo Design', {}, LONG)
    await second.publish({ type: 'job_created', channel: 'jobs', data: { job_id: 3, title: 'After' } })
    await screen.findByText('New job: After', {}, LONG)
    expect(screen.getAllByText('New job: Logo Design')).toHaveLength(1)
  })

  test('getToken signs the socket in: messages to the user arrive', async () => {
    const user = await first.register({ userType: 'employer' })
    const notes = []
    function Notes() {
      const { on } = useWebSocket()
      useEffect(() => on('job_accepted', (data, message) => notes.push([data.job_id, message.channel])), [])
      return null
    }
    renderApp({ url: first.wsUrl, getToken: user.getToken }, <Notes />)
    await screen.findByText('WebSocket: 🟢 Connected', {}, LONG)
    await first.publish({ type: 'job_accepted', user_id: user.id, data: { job_id: 9 } })
    await waitFor(() => expect(notes).toEqual([[9, `user.${user.id}`]]), LONG)
  })

  test('unsubscribe and send go through the current connection', async () => {
    const pongs = []
    const context = renderApp({ url: first.wsUrl })
    await screen.findByText('WebSocket: 🟢 Connected', {}, LONG)
    await subscribedTo(context, 'jobs')
    const remove = context.current.on('pong', (data) => pongs.push(data))
    expect(context.current.send('ping', { n: 1 })).toBe(true)
    await waitFor(() => expect(pongs).toEqual([{ n: 1 }]), LONG)
    remove()
    act(() => context.current.unsubscribe('jobs'))
    await waitFor(() => expect(context.current.positions().jobs).toBeUndefined(), LONG)
  })

  test('useWebSocket outside a provider says so', () => {
    function Lonely() {
      useWebSocket()
      return null
    }
    expect(() => render(<Lonely />)).toThrow(/inside a <WebSocketProvider>/)
  })
})
