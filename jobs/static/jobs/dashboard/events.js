// What an event means to the person signed in: the seed's icons and a
// sentence worded by who they are (the employer of the job, its worker, or
// anyone else). Pure functions: text out, the caller puts it in as text.

export const ICONS = {
  job_created: '💼',
  job_accepted: '🎉',
  job_completed: '🎊',
  payment_released: '💰',
  job_refunded: '🔄',
  other: '📢',
}

export const JOB_EVENTS = ['job_created', 'job_accepted', 'job_completed', 'job_refunded']
// On the personal channels of the people paid or refunded.
export const PAYMENT_EVENTS = ['payment_released', 'payment_refunded']

/**
 * The same news told by a job event and by a payment event (a worker's
 * `job_completed` and `payment_released`, an employer's `job_refunded` and
 * `payment_refunded`): one key for both, so that it is told once; null for
 * everything else.
 */
export function newsKey(type, data, me) {
  const worker = data?.worker_id != null && data.worker_id === me.id
  if ((type === 'job_completed' || type === 'payment_released') && worker) return `paid:${data.job_id}`
  // payment_refunded goes to the employer's channel only.
  if (type === 'payment_refunded' || (type === 'job_refunded' && data?.employer_id === me.id)) {
    return `refunded:${data?.job_id}`
  }
  return null
}

export function money(amount) {
  const value = Number(amount)
  if (!Number.isFinite(value)) return ''
  return `$${value.toLocaleString('en-US', { minimumFractionDigits: 0, maximumFractionDigits: 2 })}`
}

function summary(data) {
  if (data && typeof data.message === 'string') return data.message
  const text = JSON.stringify(data ?? {})
  return text.length > 200 ? `${text.slice(0, 199)}…` : text
}

/**
 * {icon, text} for a message of `type` with `data`, as `me` ({id, user_type})
 * should read it. `titleOf(jobId)` names a job the page already knows.
 */
export function describe(type, data, me, titleOf = () => undefined) {
  const title = data?.title ?? titleOf(data?.job_id)
  const job = title ? `“${title}”` : `#${data?.job_id}`
  const employer = data?.employer_id != null && data.employer_id === me.id
  const worker = data?.worker_id != null && data.worker_id === me.id
  const pay = money(data?.pay_amount_usd ?? data?.amount_usd)
  switch (type) {
    case 'job_created':
      return employer
        ? { icon: ICONS.job_created, text: `Your job ${job} was posted (${pay})` }
        : { icon: ICONS.job_created, text: `New job: ${title ?? job} (${pay})` }
    case 'job_accepted':
      if (employer) return { icon: ICONS.job_accepted, text: `Your job ${job} was accepted` }
      if (worker) return { icon: ICONS.job_accepted, text: `You accepted ${job}` }
      return { icon: ICONS.job_accepted, text: `Job ${job} was accepted` }
    case 'job_completed':
      if (worker) {
        return { icon: ICONS.payment_released, text: `Payment released: you earned ${pay} for ${job}` }
      }
      if (employer) {
        return {
          icon: ICONS.job_completed,
          text: `Your job ${job} was completed and ${pay} was released to the worker`,
        }
      }
      return { icon: ICONS.job_completed, text: `Job ${job} was completed` }
    case 'job_refunded':
      if (employer) {
        return { icon: ICONS.job_refunded, text: `Your job ${job} expired: ${pay} was refunded to you` }
      }
      return { icon: ICONS.job_refunded, text: `Job ${job} was refunded` }
    case 'payment_released':
      if (worker) {
        return { icon: ICONS.payment_released, text: `Payment released: you earned ${pay} for ${job}` }
      }
      return { icon: ICONS.payment_released, text: `Payment confirmed: ${pay} for ${job} was released to the worker` }
    case 'payment_refunded':
      return { icon: ICONS.job_refunded, text: `Your job ${job} expired: ${pay} was refunded to you` }
    default:
      return { icon: ICONS.other, text: `${type}: ${summary(data)}` }
  }
}

/**
 * Whether a message gets a toast (the feed shows them all): as in the seed,
 * everyone hears of a new job; the other job events toast for the people
 * they concern.
 */
export function concerns(type, data, me) {
  if (!JOB_EVENTS.includes(type) || type === 'job_created') return true
  return data?.employer_id === me.id || data?.worker_id === me.id
}
