// The job list: rows built from the API's jobs, with the actions the signed-in
// user may take (an employer completes or refunds their own jobs, a worker
// accepts open ones). The server decides; a refused action shows its reason.

import { el, clear } from './dom.js'
import { money } from './events.js'

function actionsFor(job, me) {
  const own = job.employer === me.id
  if (me.user_type === 'employer' && own) {
    if (job.status === 'accepted') return [['complete', 'Complete & pay']]
    if (job.status === 'open' && new Date(job.expires_at) <= new Date()) {
      return [['refund', 'Refund']]
    }
  }
  if (me.user_type === 'worker' && job.status === 'open') return [['accept', 'Accept']]
  return []
}

function roleOf(job, me) {
  if (job.employer === me.id) return 'yours'
  if (job.worker === me.id) return 'you work on it'
  return ''
}

/**
 * Draw `jobs` into the table body; `onAction(job, action)` runs a button's
 * action; `extra(job)` may add one more control (the chat's 💬) to a row.
 */
export function renderJobs(body, jobs, me, onAction, extra = () => null) {
  clear(body)
  if (jobs.length === 0) {
    body.append(el('tr', {}, el('td', { colspan: 6, class: 'empty', text: 'No jobs yet.' })))
    return
  }
  for (const job of jobs) {
    const buttons = actionsFor(job, me).map(([action, label]) =>
      el('button', {
        type: 'button',
        text: label,
        dataset: { action, jobId: String(job.id) },
        onclick: () => onAction(job, action),
      }),
    )
    const role = roleOf(job, me)
    body.append(
      el(
        'tr',
        { dataset: { jobId: String(job.id), status: job.status } },
        el('td', { text: job.id }),
        el('td', { class: 'title' }, el('span', { text: job.title }), role && el('small', { text: ` (${role})` })),
        el('td', { text: job.job_type }),
        el('td', { class: 'num', text: money(job.pay_amount_usd) }),
        el('td', {}, el('span', { class: `badge ${job.status}`, text: job.status })),
        el('td', { class: 'actions' }, ...buttons, extra(job)),
      ),
    )
  }
}
