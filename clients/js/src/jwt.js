/**
 * Reading (never verifying) a JWT's `exp`, to refresh the token before the
 * server closes the socket for it.
 */

function base64UrlDecode(part) {
  const base64 = part.replace(/-/g, '+').replace(/_/g, '/')
  const padded = base64 + '='.repeat((4 - (base64.length % 4)) % 4)
  const binary = atob(padded)
  const bytes = Uint8Array.from(binary, (char) => char.charCodeAt(0))
  return new TextDecoder().decode(bytes)
}

/** The token's `exp` in milliseconds since the epoch, or null when it has none. */
export function tokenExpiry(token) {
  if (typeof token !== 'string') return null
  const payload = token.split('.')[1]
  if (!payload) return null
  try {
    const { exp } = JSON.parse(base64UrlDecode(payload))
    return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : null
  } catch {
    return null
  }
}
