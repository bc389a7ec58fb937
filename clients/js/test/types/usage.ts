// Compiled by `tsc` in `npm test`: the README's usage type-checks against index.d.ts.
import { createRealtime, type Realtime, type Status } from '@paychain/realtime'

const realtime: Realtime = createRealtime({
  url: 'ws://localhost:8080/ws',
  getToken: async () => 'access token',
  backoff: { initial: 1000, max: 30000, maxAttempts: 5 },
  pingInterval: 25000,
})
const anonymous = createRealtime({ url: 'ws://localhost:8080/ws', token: null })

realtime.subscribe(['jobs', 'payments'])
realtime.subscribe('announcements')
const off = realtime.on<{ title: string }>('job_created', (data, message) => {
  const title: string = data.title
  const offset: number | undefined = message.offset
  console.log(title, offset)
})
realtime.on('reset', ({ channel, reason }) => console.log(channel, reason))
const stop = realtime.onStatus((status: Status, info) => console.log(status, info.code))
const sent: boolean = realtime.send('ping')
realtime.send('chat_send', { body: 'Hi', client_id: crypto.randomUUID() }, { channel: 'job.12' })
const connected: boolean = realtime.isConnected
const jobs = realtime.positions().jobs
console.log(sent, connected, jobs?.offset, jobs?.epoch)
off()
stop()
realtime.unsubscribe('jobs')
realtime.close()
anonymous.close()

// @ts-expect-error: a token or getToken, not both
createRealtime({ url: 'ws://x/ws', token: 't', getToken: () => 't' })

// The browser's own WebSocket class fits the option.
createRealtime({ url: 'ws://x/ws', WebSocket: globalThis.WebSocket }).close()
