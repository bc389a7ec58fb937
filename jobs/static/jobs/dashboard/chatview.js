// Drawing the chat panel: the conversation list, the messages of the open
// conversation with their ticks, the unread badges. Pure DOM building from
// data, all of it as text (dom.js); the state lives in chat.js.

import { el, clear } from './dom.js'

/** What a message of mine shows: 🕓 not yet stored, ✓ sent, ✓✓ read, ⚠️ not sent. */
export const TICKS = {
  pending: { text: '🕓', label: 'Sending' },
  sent: { text: '✓', label: 'Sent' },
  read: { text: '✓✓', label: 'Read' },
  failed: { text: '⚠️', label: 'Not sent' },
}

/** A count in a pill, or nothing for 0. */
export function unreadBadge(count) {
  if (!count) return null
  return el('span', {
    class: 'unread',
    title: `${count} unread`,
    'aria-label': `${count} unread`,
    text: count > 99 ? '99+' : count,
  })
}

function clock(iso) {
  const when = iso ? new Date(iso) : null
  if (when === null || Number.isNaN(when.getTime())) return null
  return el('time', {
    datetime: when.toISOString(),
    title: when.toLocaleString(),
    text: when.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }),
  })
}

function preview(text, length = 80) {
  const line = String(text ?? '').replace(/\s+/g, ' ').trim()
  return line.length > length ? `${line.slice(0, length - 1)}…` : line
}

/**
 * The conversations, newest first: `conversations` are {jobId, title, other,
 * last, unread}; `nameOf(conversation)` names the other participant.
 */
export function renderConversations(list, conversations, { activeId, me, nameOf, onOpen }) {
  clear(list)
  for (const conversation of conversations) {
    const last = conversation.last
    const lastLine = last
      ? `${last.sender_id === me.id ? 'You: ' : ''}${preview(last.body)}`
      : 'No messages yet'
    list.append(
      el(
        'li',
        {},
        el(
          'button',
          {
            type: 'button',
            class: conversation.jobId === activeId ? 'conversation active' : 'conversation',
            dataset: { jobId: String(conversation.jobId) },
            onclick: () => onOpen(conversation.jobId),
          },
          el('span', { class: 'peer', text: nameOf(conversation) }),
          el('span', { class: 'title', text: conversation.title ?? `Job #${conversation.jobId}` }),
          el('span', { class: 'last', text: lastLine }),
          unreadBadge(conversation.unread),
        ),
      ),
    )
  }
}

/**
 * The open conversation's messages, oldest first. `entries` are {message_id
 * (null until stored), client_id, sender_id, body, created_at, state}; mine
 * up to `otherRead` show ✓✓. `onRetry(entry)` sends a failed one again.
 */
export function renderMessages(list, entries, { me, otherRead, onRetry }) {
  clear(list)
  for (const entry of entries) {
    const mine = entry.sender_id === me.id
    let tick = null
    if (mine) {
      const state = entry.message_id !== null && entry.message_id <= otherRead ? 'read' : entry.state
      tick = el('span', {
        class: `ticks ${state}`,
        dataset: { state },
        title: TICKS[state].label,
        'aria-label': TICKS[state].label,
        text: TICKS[state].text,
      })
    }
    list.append(
      el(
        'li',
        {
          class: mine ? 'message mine' : 'message theirs',
          dataset: {
            messageId: entry.message_id === null ? '' : String(entry.message_id),
            clientId: entry.client_id ?? '',
          },
        },
        el('span', { class: 'body', text: entry.body }),
        el(
          'span',
          { class: 'meta' },
          clock(entry.created_at),
          tick,
          entry.state === 'failed' &&
            el('button', { type: 'button', class: 'link', text: 'Retry', onclick: () => onRetry(entry) }),
        ),
      ),
    )
  }
}

/** The job row's way into its chat: 💬 with the unread count. */
export function chatButton(job, unread, onOpen) {
  return el(
    'button',
    {
      type: 'button',
      class: 'chat-button',
      dataset: { action: 'chat', jobId: String(job.id) },
      onclick: () => onOpen(job.id),
    },
    '💬 Chat',
    unreadBadge(unread),
  )
}
