// The dashboard: sign in over the REST API, then one socket through the
// JavaScript client (@paychain/realtime, served from clients/js/src) on
// `jobs`, `announcements` and the user's own `user.<id>` channel. Events go to
// the feed and to toasts, worded for the signed-in user, and refresh the job
// list; a job's employer and worker chat about it (chat.js); staff also get
// the analytics panel. Nothing from the server or the user is ever parsed as
// HTML (see dom.js).

import { $, el, clear } from './dom.js'
import { createSession, jobsOf } from './api.js'
import { JOB_EVENTS, PAYMENT_EVENTS, concerns, describe, newsKey } from './events.js'
import { renderJobs } from './jobs.js'
import { createChatPanel } from './chat.js'
import { createStaffPanel } from './staff.js'

const root = $('app')
const CHANNELS = ['jobs', 'announcements']
// Broadcast types shown besides the job events (the broadcast form's default first).
const OTHER_TYPES = ['announcement', 'test_message']
const FEED_LENGTH = 50
const TOAST_MS = 6000

let session = null
let me = null
let realtime = null
let staff = null
let chat = null
let removers = []
// The news already told (see newsKey).
let told = new Set()
let jobs = new Map()
let reloadTimer = null

function setStatus(status) {
  const node = $('status')
  node.dataset.status = status
  node.title = status
  node.textContent = status === 'connected' ? '🟢 Connected' : '🔴 Disconnected'
}

function toast(icon, text, tone = 'info') {
  const item = el('div', { class: `toast ${tone}`, role: 'status' }, el('span', { class: 'icon', text: icon }), el('span', { text }))
  $('toasts').append(item)
  setTimeout(() => item.remove(), TOAST_MS)
}

function addToFeed(icon, text, message) {
  const when = message?.timestamp ? new Date(message.timestamp) : new Date()
  const item = el(
    'li',
    { dataset: { type: message?.type ?? '' } },
    el('time', { datetime: when.toISOString(), text: when.toLocaleTimeString() }),
    el('span', { class: 'icon', text: icon }),
    el('span', { class: 'text', text }),
    message?.channel && el('span', { class: 'channel', text: message.channel }),
  )
  $('feed').prepend(item)
  while ($('feed').children.length > FEED_LENGTH) $('feed').lastElementChild.remove()
}

async function loadJobs() {
  if (session === null) return
  try {
    const list = jobsOf(await session.call('/api/jobs/?page_size=50'))
    jobs = new Map(list.map((job) => [job.id, job]))
    renderJobs($('job-list'), list, me, runAction, (job) => chat?.buttonFor(job))
    chat?.jobsLoaded(list)
    $('jobs-error').textContent = ''
  } catch (error) {
    $('jobs-error').textContent = error.message
  }
}

function reloadJobs() {
  clearTimeout(reloadTimer)
  reloadTimer = setTimeout(loadJobs, 100)
}

async function runAction(job, action) {
  try {
    await session.call(`/api/jobs/${encodeURIComponent(job.id)}/${action}/`, { method: 'POST' })
    reloadJobs()
  } catch (error) {
    $('jobs-error').textContent = error.message
    toast('⚠️', error.message, 'error')
  }
}

/**
 * One publication. The client hands each over once, across reconnects and
 * across channels (a job event reaches `jobs` and a personal channel with
 * one id).
 */
function handle(type, data, message) {
  staff?.seen(type, message)
  const { icon, text } = describe(type, data ?? {}, me, (jobId) => jobs.get(jobId)?.title)
  if (JOB_EVENTS.includes(type)) reloadJobs()
  const news = newsKey(type, data ?? {}, me)
  if (news !== null) {
    if (told.has(news)) return
    told.add(news)
  }
  if (type === 'payment_released' && data?.worker_id !== me.id) {
    // The employer's feed already says so (🎊 job_completed): a 💰 toast only.
    toast(icon, text)
    return
  }
  addToFeed(icon, text, { ...message, type })
  if (concerns(type, data, me)) toast(icon, text)
}

/** The publication types the dashboard shows (the client has no catch-all handler). */
function listen(client) {
  for (const type of [...JOB_EVENTS, ...PAYMENT_EVENTS, ...OTHER_TYPES]) {
    removers.push(client.on(type, (data, message) => handle(type, data, message)))
  }
  // The client announces a channel whose missed publications are lost for good.
  removers.push(client.on('reset', () => reloadJobs()))
}

async function connect() {
  const { createRealtime } = await import(root.dataset.clientModule)
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws'
  realtime = createRealtime({
    url: `${scheme}://${location.host}${root.dataset.socketPath}`,
    getToken: session.getToken,
    backoff: { initial: 1000, max: 10000 },
    pingInterval: 25000,
  })
  let wasConnected = false
  removers.push(
    realtime.onStatus((status) => {
      setStatus(status)
      // Back after an outage: the client replays what it missed; the list is
      // reloaded all the same, in case a channel could not be recovered.
      if (status === 'connected' && wasConnected) reloadJobs()
      if (status === 'connected') wasConnected = true
      if (status === 'failed') toast('⚠️', 'The live connection gave up. Sign in again.', 'error')
    }),
  )
  listen(realtime)
  removers.push(...(chat?.attach(realtime) ?? []))
  realtime.subscribe([...CHANNELS, `user.${me.id}`])
}

function showLive() {
  $('sign-in').hidden = true
  $('live').hidden = false
  $('sign-out').hidden = false
  $('who').textContent = `${me.username} · ${me.user_type}${me.is_staff ? ' · staff' : ''}`
  $('post-job').hidden = me.user_type !== 'employer'
  chat = createChatPanel({ session, me, toast, titleOf: (jobId) => jobs.get(jobId)?.title })
  if (me.is_staff) {
    staff = createStaffPanel(session)
    staff.start()
  }
}

async function signIn(event) {
  event.preventDefault()
  const form = event.currentTarget
  const error = $('sign-in-error')
  error.textContent = ''
  const candidate = createSession()
  try {
    await candidate.signIn(form.elements.username.value.trim(), form.elements.password.value)
    me = await candidate.call('/api/auth/me/')
  } catch (failure) {
    error.textContent = failure.status === 401 ? 'Wrong username or password.' : failure.message
    return
  }
  form.reset()
  session = candidate
  showLive()
  await Promise.all([loadJobs(), connect()]).catch((failure) => {
    toast('⚠️', failure.message, 'error')
  })
}

async function signOut() {
  for (const remove of removers) remove()
  removers = []
  realtime?.close()
  realtime = null
  staff?.stop()
  staff = null
  chat?.stop()
  chat = null
  told = new Set()
  const ending = session
  session = me = null
  jobs = new Map()
  clear($('feed'))
  clear($('job-list'))
  setStatus('disconnected')
  $('who').textContent = ''
  $('live').hidden = true
  $('sign-out').hidden = true
  $('sign-in').hidden = false
  await ending?.signOut()
}

async function postJob(event) {
  event.preventDefault()
  const form = event.currentTarget
  try {
    await session.call('/api/jobs/', {
      method: 'POST',
      body: {
        title: form.elements.title.value,
        job_type: form.elements.job_type.value,
        pay_amount_usd: form.elements.pay_amount_usd.value,
      },
    })
    form.elements.title.value = ''
    reloadJobs()
  } catch (error) {
    $('jobs-error').textContent = error.message
  }
}

$('sign-in-form').addEventListener('submit', signIn)
$('sign-out').addEventListener('click', signOut)
$('post-job').addEventListener('submit', postJob)
