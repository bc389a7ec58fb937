// The staff panel: /stats every second (connections in total and per public
// channel, published and delivered per second), a live chart of the messages
// this dashboard receives by type, recent broadcasts, and a broadcast form.

import { $, el, clear } from './dom.js'
import { createRateChart } from './chart.js'
import { JOB_EVENTS } from './events.js'

const PRIVATE_CHANNEL = /^(user|job)\./
const RECENT = 10

function rate(now, before, seconds) {
  if (!before || seconds <= 0) return 0
  return Math.max(0, Math.round((now - before) / seconds))
}

export function createStaffPanel(session) {
  const chart = createRateChart($('chart'), $('chart-legend'))
  const recent = new Map() // publication id -> li
  let timer = null
  let previous = null // {at, messages}

  async function poll() {
    let stats
    try {
      stats = await session.call('/stats')
    } catch {
      return
    }
    const at = performance.now()
    const messages = stats.messages ?? {}
    const seconds = previous ? (at - previous.at) / 1000 : 0
    $('connections-total').textContent = String(stats.connections?.total ?? 0)
    $('processes').textContent = String(stats.processes ?? 1)
    $('rate-published').textContent = String(rate(messages.published, previous?.messages.published, seconds))
    $('rate-delivered').textContent = String(rate(messages.delivered, previous?.messages.delivered, seconds))
    previous = { at, messages }
    const list = clear($('by-channel'))
    const channels = Object.entries(stats.connections?.by_channel ?? {})
      .filter(([name]) => !PRIVATE_CHANNEL.test(name))
      .sort(([a], [b]) => a.localeCompare(b))
    for (const [name, count] of channels) {
      list.append(el('li', { dataset: { channel: name } }, el('b', { text: name }), ` ${count}`))
    }
    if (channels.length === 0) list.append(el('li', { class: 'empty', text: 'none' }))
  }

  function remember(id, type, channel, note) {
    if (id && recent.has(id)) return
    const item = el(
      'li',
      {},
      el('time', { text: new Date().toLocaleTimeString() }),
      ' ',
      el('b', { text: type }),
      ` → ${channel || 'every client'}`,
      note && el('small', { text: ` ${note}` }),
    )
    if (id) recent.set(id, item)
    $('broadcasts').prepend(item)
    while ($('broadcasts').children.length > RECENT) $('broadcasts').lastElementChild.remove()
  }

  /** Every message this dashboard receives: counted by type; non-job ones are broadcasts. */
  function seen(type, message) {
    chart.count(type)
    if (!JOB_EVENTS.includes(type)) remember(message?.id, type, message?.channel, 'received')
  }

  async function send(form) {
    const error = $('broadcast-error')
    error.textContent = ''
    let data
    try {
      data = JSON.parse(form.elements.data.value || '{}')
    } catch {
      error.textContent = 'Data must be JSON.'
      return
    }
    if (data === null || typeof data !== 'object' || Array.isArray(data)) {
      error.textContent = 'Data must be a JSON object.'
      return
    }
    const body = { type: form.elements.type.value.trim(), data }
    const channel = form.elements.channel.value.trim()
    if (channel) body.channel = channel
    try {
      const accepted = await session.call('/broadcast', { method: 'POST', body })
      remember(accepted.id, body.type, channel, `sent (${accepted.id})`)
    } catch (failure) {
      error.textContent = failure.message
    }
  }

  function onSubmit(event) {
    event.preventDefault()
    send(event.currentTarget)
  }

  return {
    seen,
    start() {
      $('staff-panel').hidden = false
      $('broadcast-form').addEventListener('submit', onSubmit)
      poll()
      timer = setInterval(() => {
        chart.tick()
        poll()
      }, 1000)
    },
    stop() {
      clearInterval(timer)
      $('broadcast-form').removeEventListener('submit', onSubmit)
      $('staff-panel').hidden = true
      clear($('broadcasts'))
      recent.clear()
      previous = null
    },
  }
}
