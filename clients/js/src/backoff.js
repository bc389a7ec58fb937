/**
 * Reconnect delays: the seed's 1, 2, 4, 8, 16 s, capped at 30 s, each spread
 * by a random jitter so that clients dropped together do not come back together.
 */

export const BACKOFF_DEFAULTS = Object.freeze({
  initial: 1000,
  max: 30000,
  maxAttempts: Infinity,
  jitter: 0.2,
})

/**
 * The delay before reconnect attempt `attempt` (0 for the first), in ms:
 * `min(max, initial * 2^attempt)`, times a factor in `[1 - jitter, 1 + jitter]`
 * drawn from `random()` (0.5 gives the exact schedule), never above `max`.
 */
export function backoffDelay(attempt, options = {}, random = Math.random) {
  const { initial, max, jitter } = { ...BACKOFF_DEFAULTS, ...options }
  const base = Math.min(max, initial * 2 ** attempt)
  const spread = 1 - jitter + 2 * jitter * random()
  return Math.round(Math.min(max, base * spread))
}
