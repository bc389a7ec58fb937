// Compiled by `tsc` in `npm test`: the README's React usage type-checks against index.d.ts.
import { useEffect } from 'react'
import { useWebSocket, WebSocketProvider } from '@paychain/realtime-react'

function JobList() {
  const { isConnected, on, subscribe, unsubscribe, send } = useWebSocket()
  useEffect(() => {
    subscribe('jobs')
    const off = on<{ title: string }>('job_created', (data) => console.log(data.title))
    return () => {
      off()
      unsubscribe(['jobs'])
    }
  }, [])
  send('ping')
  return <div>WebSocket: {isConnected ? '🟢 Connected' : '🔴 Disconnected'}</div>
}

export function App({ getToken }: { getToken: () => Promise<string> }) {
  return (
    <WebSocketProvider url="ws://localhost:8080/ws" getToken={getToken} pingInterval={25000}>
      <JobList />
    </WebSocketProvider>
  )
}
