// The chat panel: one conversation per job between its employer and its
// worker (README, "Chat"). The open conversation's socket is subscribed to
// `job.<id>`: messages (`chat_message`), "… is typing" (`typing`) and read
// receipts (`chat_read`) arrive live, and the client's `since` recovers what a
// reconnect missed. The other conversations are counted by `chat_notification`
// on the user's own channel, which the server sends to a participant with no
// socket on the job's channel.
//
// A message goes out as `chat_send` with a client_id chosen here; it shows 🕓
// until the server's `chat_ack`, then ✓, then ✓✓ once the other side's
// `chat_read` reaches it. Unacknowledged messages are sent again, with the
// same client_id, on every reconnect: the server stores a client_id once, so
// nothing is lost or doubled.

import { $, clear } from './dom.js'
import { chatButton, renderConversations, renderMessages } from './chatview.js'

const PAGE = 50
const BODY_MAX = 4000
// "typing" again at most this often while the user types (the server forwards
// one a second and says "stopped" by itself 5 s after the last).
const TYPING_REPEAT_MS = 3000
// No keystroke for this long: "stopped".
const TYPING_IDLE_MS = 4000
// A "typing" not followed by anything for this long is over.
const TYPING_SHOWN_MS = 7000
const NEAR_BOTTOM_PX = 80

/** A v4 UUID, also where crypto.randomUUID is missing (plain http off localhost). */
export function newClientId() {
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID()
  const bytes = crypto.getRandomValues(new Uint8Array(16))
  bytes[6] = (bytes[6] & 0x0f) | 0x40
  bytes[8] = (bytes[8] & 0x3f) | 0x80
  const hex = [...bytes].map((byte) => byte.toString(16).padStart(2, '0')).join('')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}

const jobIdOf = (channel) => {
  const match = /^job\.(\d+)$/.exec(channel ?? '')
  return match ? Number(match[1]) : null
}

/** A stored message, from `chat_message` or the API (one shape), as shown. */
function normalize(message) {
  return {
    message_id: message.message_id ?? null,
    job_id: message.job_id ?? null,
    client_id: message.client_id ?? null,
    sender_id: message.sender_id ?? null,
    body: String(message.body ?? ''),
    created_at: message.created_at ?? null,
    state: 'sent',
  }
}

/**
 * `session` calls the API, `me` is the signed-in user, `toast(icon, text)`
 * tells them, `titleOf(jobId)` names a job the page knows.
 */
export function createChatPanel({ session, me, toast, titleOf }) {
  const conversations = new Map() // jobId -> {jobId, title, description, other, last, unread}
  const outbox = new Map() // client_id -> my entry not yet stored (pending or failed)
  let inFlight = [] // client_ids sent on this socket and not answered yet, in order
  let realtime = null
  let open = null // {jobId, channel, messages: Map(message_id -> entry), otherRead, readSent, older}
  let typingSent = false
  let typingAt = 0
  let typingIdle = null
  let typingShown = null
  let chatsLoading = null

  // --- conversations ---------------------------------------------------------------------

  function conversation(jobId) {
    let found = conversations.get(jobId)
    if (!found) {
      found = { jobId, title: titleOf(jobId), description: '', other: null, last: null, unread: 0 }
      conversations.set(jobId, found)
    }
    return found
  }

  function nameOf(item) {
    if (item?.other?.username) return item.other.username
    return me.user_type === 'employer' ? 'The worker' : 'The employer'
  }

  function drawList() {
    const sorted = [...conversations.values()].sort((a, b) => {
      const at = (item) => item.last?.message_id ?? 0
      return at(b) - at(a) || b.jobId - a.jobId
    })
    renderConversations($('chat-list'), sorted, { activeId: open?.jobId, me, nameOf, onOpen: openConversation })
    $('chat-empty').hidden = sorted.length > 0
    const total = sorted.reduce((sum, item) => sum + (item.unread || 0), 0)
    $('chat-total').hidden = total === 0
    $('chat-total').textContent = total > 99 ? '99+' : String(total)
    for (const badge of document.querySelectorAll('#job-list button[data-action=chat]')) {
      const item = conversations.get(Number(badge.dataset.jobId))
      badge.replaceWith(chatButton({ id: Number(badge.dataset.jobId) }, item?.unread ?? 0, openConversation))
    }
  }

  /** GET /api/chats/: the user's conversations with their unread counts. */
  function loadChats() {
    chatsLoading ??= session
      .call('/api/chats/')
      .then((answer) => {
        const list = Array.isArray(answer) ? answer : (answer?.results ?? [])
        for (const chat of list) {
          const item = conversation(chat.job_id)
          item.title = chat.title ?? item.title
          item.other = chat.other_participant ?? item.other
          item.last = chat.last_message ? normalize(chat.last_message) : item.last
          // The open conversation is being read.
          item.unread = item.jobId === open?.jobId ? 0 : (chat.unread_count ?? 0)
          // How far the other side has read, where the server says (else ✓✓
          // shows from their next chat_read on).
          if (item.jobId === open?.jobId && Number.isInteger(chat.other_last_read_id)) {
            open.otherRead = Math.max(open.otherRead, chat.other_last_read_id)
            drawMessages()
          }
        }
        drawList()
        if (open) drawHead()
      })
      .catch(() => {})
      .finally(() => {
        chatsLoading = null
      })
    return chatsLoading
  }

  /** The job list changed: the jobs with a worker are conversations of theirs. */
  function jobsLoaded(jobs) {
    let unknown = false
    for (const job of jobs) {
      if (job.worker == null || (job.employer !== me.id && job.worker !== me.id)) continue
      unknown ||= !conversations.has(job.id)
      const item = conversation(job.id)
      item.title = job.title
      item.description = job.description ?? ''
    }
    if (unknown) loadChats()
    else drawList()
    if (open) drawHead()
  }

  /** The job row's 💬 button, for the jobs the user chats about. */
  function buttonFor(job) {
    if (job.worker == null || (job.employer !== me.id && job.worker !== me.id)) return null
    return chatButton(job, conversations.get(job.id)?.unread ?? 0, openConversation)
  }

  // --- the open conversation -------------------------------------------------------------

  function drawHead() {
    const item = conversation(open.jobId)
    $('chat-title').textContent = `${item.title ?? `Job #${item.jobId}`} · with ${nameOf(item)}`
    $('chat-description').textContent = item.description ?? ''
  }

  function entries() {
    const stored = [...open.messages.values()].sort((a, b) => a.message_id - b.message_id)
    const waiting = [...outbox.values()].filter((entry) => entry.job_id === open.jobId)
    return [...stored, ...waiting]
  }

  function drawMessages() {
    const list = $('chat-messages')
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < NEAR_BOTTOM_PX
    renderMessages(list, entries(), { me, otherRead: open.otherRead, onRetry: retry })
    if (atBottom) list.scrollTop = list.scrollHeight
    $('chat-older').hidden = open.older === null
  }

  function openConversation(jobId) {
    if (open?.jobId === jobId) {
      $('chat-panel').scrollIntoView({ block: 'nearest' })
      $('chat-form').elements.body.focus()
      return
    }
    closeConversation()
    const channel = `job.${jobId}`
    open = { jobId, channel, messages: new Map(), otherRead: 0, readSent: 0, older: null }
    $('chat-view').hidden = false
    $('chat-error').textContent = ''
    clear($('chat-messages'))
    drawHead()
    drawList()
    realtime?.subscribe(channel)
    // Again once subscribed (see `subscribed`), so that nothing published
    // between the two is missed; the merge is by message_id.
    loadHistory()
    loadChats()
    $('chat-panel').scrollIntoView({ block: 'nearest' })
    $('chat-form').elements.body.focus()
  }

  function closeConversation() {
    if (open === null) return
    stopTyping()
    hideTyping()
    realtime?.unsubscribe(open.channel)
    open = null
    $('chat-view').hidden = true
  }

  function merge(message) {
    const entry = normalize(message)
    if (entry.message_id === null) return null
    if (entry.sender_id === me.id && entry.client_id) outbox.delete(entry.client_id)
    open.messages.set(entry.message_id, entry)
    return entry
  }

  async function loadHistory(before = null) {
    const target = open
    const query = new URLSearchParams({ limit: String(PAGE) })
    if (before !== null) query.set('before', String(before))
    let page
    try {
      page = await session.call(`/api/jobs/${encodeURIComponent(target.jobId)}/messages/?${query}`)
    } catch (error) {
      if (open === target) $('chat-error').textContent = error.message
      return
    }
    if (open !== target) return
    const results = Array.isArray(page) ? page : (page?.results ?? [])
    for (const message of results) merge(message)
    if (before !== null || target.older === null) {
      const oldest = Math.min(...[...target.messages.keys()])
      target.older = page?.next && Number.isFinite(oldest) ? oldest : null
    }
    const list = $('chat-messages')
    const fromBottom = list.scrollHeight - list.scrollTop
    drawMessages()
    if (before !== null) list.scrollTop = list.scrollHeight - fromBottom
    else list.scrollTop = list.scrollHeight
    const last = results[0] && normalize(results[0])
    if (last && before === null) conversation(target.jobId).last = last
    markRead()
  }

  /** Tell the other side what has been read: the panel is open and the page shown. */
  function markRead() {
    if (open === null || document.visibilityState === 'hidden') return
    const item = conversation(open.jobId)
    if (item.unread) {
      item.unread = 0
      drawList()
    }
    let newest = 0
    for (const entry of open.messages.values()) {
      if (entry.sender_id !== me.id) newest = Math.max(newest, entry.message_id)
    }
    if (newest <= open.readSent) return
    if (realtime?.send('chat_read', { message_id: newest }, { channel: open.channel })) {
      open.readSent = newest
    }
  }

  // --- sending ---------------------------------------------------------------------------

  function transmit(entry) {
    const sent = realtime?.send(
      'chat_send',
      { body: entry.body, client_id: entry.client_id },
      { channel: `job.${entry.job_id}` },
    )
    if (sent) inFlight.push(entry.client_id)
    return sent
  }

  function submit(event) {
    event.preventDefault()
    const field = $('chat-form').elements.body
    const body = field.value.trim()
    $('chat-error').textContent = ''
    if (open === null || body === '') return
    if (body.length > BODY_MAX) {
      $('chat-error').textContent = `A message holds at most ${BODY_MAX} characters.`
      return
    }
    const entry = {
      message_id: null,
      job_id: open.jobId,
      client_id: newClientId(),
      sender_id: me.id,
      body,
      created_at: new Date().toISOString(),
      state: 'pending',
    }
    outbox.set(entry.client_id, entry)
    // Not connected: it waits (🕓) and goes out on reconnect.
    transmit(entry)
    field.value = ''
    // The server says "stopped" for us once the message is published.
    typingSent = false
    clearTimeout(typingIdle)
    const list = $('chat-messages')
    drawMessages()
    list.scrollTop = list.scrollHeight
  }

  function retry(entry) {
    entry.state = 'pending'
    $('chat-error').textContent = ''
    transmit(entry)
    if (open) drawMessages()
  }

  /** Enter sends, Shift+Enter is a new line. */
  function onKeydown(event) {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault()
      $('chat-form').requestSubmit()
    }
  }

  // --- typing ----------------------------------------------------------------------------

  function sendTyping(state) {
    if (open === null) return
    realtime?.send('typing', { state }, { channel: open.channel })
  }

  function stopTyping() {
    clearTimeout(typingIdle)
    if (typingSent) sendTyping('stopped')
    typingSent = false
  }

  function onInput() {
    if ($('chat-form').elements.body.value.trim() === '') {
      stopTyping()
      return
    }
    const now = Date.now()
    if (!typingSent || now - typingAt >= TYPING_REPEAT_MS) {
      sendTyping('typing')
      typingSent = true
      typingAt = now
    }
    clearTimeout(typingIdle)
    typingIdle = setTimeout(stopTyping, TYPING_IDLE_MS)
  }

  function showTyping() {
    $('chat-typing').textContent = `${nameOf(conversation(open.jobId))} is typing…`
    clearTimeout(typingShown)
    typingShown = setTimeout(hideTyping, TYPING_SHOWN_MS)
  }

  function hideTyping() {
    clearTimeout(typingShown)
    $('chat-typing').textContent = ''
  }

  // --- server messages -------------------------------------------------------------------

  function onMessage(data, message) {
    const jobId = data.job_id ?? jobIdOf(message.channel)
    if (jobId === null) return
    const item = conversation(jobId)
    const fresh = normalize(data)
    if (fresh.message_id !== null && (item.last?.message_id ?? 0) <= fresh.message_id) item.last = fresh
    if (open?.jobId !== jobId) {
      // A late one from a conversation just closed.
      if (fresh.sender_id !== me.id) item.unread += 1
      drawList()
      return
    }
    merge(data)
    // Open in a hidden page: unread until the page is shown again.
    if (fresh.sender_id !== me.id && document.visibilityState === 'hidden') item.unread += 1
    if (fresh.sender_id !== me.id) hideTyping()
    drawMessages()
    markRead()
    drawList()
  }

  function onAck(data) {
    inFlight = inFlight.filter((id) => id !== data.client_id)
    const entry = outbox.get(data.client_id)
    if (!entry) return
    outbox.delete(data.client_id)
    // A repeated client_id acks the message stored the first time.
    entry.message_id = data.message_id
    entry.state = 'sent'
    if (open?.jobId === entry.job_id && !open.messages.has(entry.message_id)) {
      open.messages.set(entry.message_id, entry)
    }
    if (open?.jobId === entry.job_id) drawMessages()
  }

  function onTyping(data, message) {
    if (open === null || message.channel !== open.channel || data.user_id === me.id) return
    if (data.state === 'typing') showTyping()
    else hideTyping()
  }

  function onRead(data, message) {
    const jobId = jobIdOf(message.channel)
    if (data.user_id === me.id) {
      // Read elsewhere (another tab).
      const item = conversations.get(jobId)
      if (item && open?.jobId !== jobId && item.unread) {
        item.unread = 0
        drawList()
      }
      return
    }
    if (open?.jobId !== jobId || !(data.message_id > open.otherRead)) return
    open.otherRead = data.message_id
    drawMessages()
  }

  function onNotification(data) {
    const item = conversation(data.job_id)
    if (open?.jobId === data.job_id && document.visibilityState !== 'hidden') return
    item.unread += 1
    item.last = normalize({ ...data, body: data.preview })
    toast('💬', `${nameOf(item)} on “${item.title ?? `Job #${item.jobId}`}”: ${data.preview ?? ''}`)
    drawList()
    if (!item.other || item.title === undefined) loadChats()
  }

  /**
   * A refused chat_send names its client_id; one that cannot (no valid
   * client_id) is the oldest unanswered one: the socket answers in order.
   */
  function onError(data) {
    let clientId = typeof data.client_id === 'string' ? data.client_id : null
    if (clientId === null) {
      const chatSend =
        data.code === 'chat_rate_limited' ||
        (data.code === 'invalid_message' && ['body', 'client_id'].includes(data.field))
      if (!chatSend || inFlight.length === 0) return
      clientId = inFlight[0]
    }
    inFlight = inFlight.filter((id) => id !== clientId)
    const entry = outbox.get(clientId)
    if (!entry) return
    if (open?.jobId === entry.job_id) $('chat-error').textContent = data.message ?? data.code
    if (data.code === 'invalid_message') {
      // Sending it again would fail again: give the text back to edit.
      outbox.delete(entry.client_id)
      if (open?.jobId === entry.job_id && $('chat-form').elements.body.value === '') {
        $('chat-form').elements.body.value = entry.body
      }
    } else {
      entry.state = 'failed'
    }
    if (open?.jobId === entry.job_id) drawMessages()
  }

  function onSubscribed(data) {
    if (open !== null && (data.channels ?? []).includes(open.channel)) loadHistory()
  }

  function onReset(data) {
    if (open !== null && data.channel === open.channel) loadHistory()
  }

  function onStatus(status) {
    if (status !== 'connected') return
    // A new socket: what the old one sent and never heard back about goes again.
    inFlight = []
    for (const entry of outbox.values()) {
      if (entry.state === 'pending') transmit(entry)
    }
    typingSent = false
    markRead()
  }

  function onVisibility() {
    if (document.visibilityState === 'visible') markRead()
  }

  function olderClicked() {
    if (open !== null && open.older !== null) loadHistory(open.older)
  }

  return {
    buttonFor,
    jobsLoaded,
    open: openConversation,

    /** Show the panel and listen to the client; returns the removers. */
    attach(client) {
      realtime = client
      $('chat-panel').hidden = false
      $('chat-form').addEventListener('submit', submit)
      $('chat-form').elements.body.addEventListener('input', onInput)
      $('chat-form').elements.body.addEventListener('keydown', onKeydown)
      $('chat-form').elements.body.addEventListener('blur', stopTyping)
      $('chat-older').addEventListener('click', olderClicked)
      document.addEventListener('visibilitychange', onVisibility)
      loadChats()
      return [
        client.on('chat_message', onMessage),
        client.on('chat_ack', onAck),
        client.on('typing', onTyping),
        client.on('chat_read', onRead),
        client.on('chat_notification', onNotification),
        client.on('error', onError),
        client.on('subscribed', onSubscribed),
        client.on('reset', onReset),
        client.onStatus(onStatus),
      ]
    },

    stop() {
      closeConversation()
      clearTimeout(typingIdle)
      $('chat-form').removeEventListener('submit', submit)
      $('chat-form').elements.body.removeEventListener('input', onInput)
      $('chat-form').elements.body.removeEventListener('keydown', onKeydown)
      $('chat-form').elements.body.removeEventListener('blur', stopTyping)
      $('chat-older').removeEventListener('click', olderClicked)
      document.removeEventListener('visibilitychange', onVisibility)
      $('chat-form').reset()
      $('chat-panel').hidden = true
      clear($('chat-list'))
      clear($('chat-messages'))
      conversations.clear()
      outbox.clear()
      inFlight = []
      realtime = null
    },
  }
}
