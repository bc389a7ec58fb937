// The REST API, signed in with a JWT pair from /api/auth/token/. The access
// token is renewed with the refresh token shortly before it expires (and
// once on a 401); the refresh token is kept in memory only.

export class ApiError extends Error {
  constructor(status, body) {
    super(describeError(status, body))
    this.status = status
    this.body = body
  }
}

function describeError(status, body) {
  if (body && typeof body === 'object' && !Array.isArray(body)) {
    if (typeof body.detail === 'string') return body.detail
    const parts = Object.entries(body).map(
      ([field, messages]) => `${field}: ${[].concat(messages).join(' ')}`,
    )
    if (parts.length) return parts.join('; ')
  }
  return `The server answered ${status}.`
}

/** A JWT's claims, or {} (only to know when to renew; the server checks it). */
export function claimsOf(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')
    return JSON.parse(atob(part.padEnd(Math.ceil(part.length / 4) * 4, '=')))
  } catch {
    return {}
  }
}

function needsRenewal(token) {
  const { exp, iat } = claimsOf(token)
  if (typeof exp !== 'number') return true
  const lifetime = typeof iat === 'number' ? exp - iat : 300
  const margin = Math.min(60, lifetime / 4) * 1000
  return exp * 1000 - Date.now() < margin
}

async function request(path, { method = 'GET', body, token } = {}) {
  const headers = { Accept: 'application/json' }
  if (body !== undefined) headers['Content-Type'] = 'application/json'
  if (token) headers.Authorization = `Bearer ${token}`
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    // The JWT is the credential: no session cookie, so no CSRF either.
    credentials: 'omit',
  })
  const text = await response.text()
  let data = null
  if (text) {
    try {
      data = JSON.parse(text)
    } catch {
      data = { detail: text.slice(0, 200) }
    }
  }
  if (!response.ok) throw new ApiError(response.status, data)
  return data
}

export function createSession() {
  let access = null
  let refresh = null
  let renewing = null

  function renew() {
    if (refresh === null) return Promise.reject(new ApiError(401, { detail: 'Signed out.' }))
    renewing ??= request('/api/auth/token/refresh/', { method: 'POST', body: { refresh } })
      .then((tokens) => {
        access = tokens.access
        // With rotation the server hands out a new refresh token too.
        if (tokens.refresh) refresh = tokens.refresh
        return access
      })
      .finally(() => {
        renewing = null
      })
    return renewing
  }

  /** A valid access token: the current one, or a renewed one near its expiry. */
  async function getToken() {
    if (access !== null && !needsRenewal(access)) return access
    return renew()
  }

  async function call(path, options = {}) {
    try {
      return await request(path, { ...options, token: await getToken() })
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 401 || refresh === null) throw error
      return request(path, { ...options, token: await renew() })
    }
  }

  return {
    async signIn(username, password) {
      const tokens = await request('/api/auth/token/', {
        method: 'POST',
        body: { username, password },
      })
      access = tokens.access
      refresh = tokens.refresh
    },
    async signOut() {
      const token = refresh
      const bearer = access
      access = refresh = null
      if (token === null) return
      // Blacklists the refresh token where the server offers it; otherwise
      // forgetting it is all there is to do.
      await request('/api/auth/logout/', { method: 'POST', body: { refresh: token }, token: bearer })
        .catch(() => {})
    },
    getToken,
    call,
  }
}

/** GET /api/jobs/ answers a page ({count, next, previous, results}) or a plain list. */
export function jobsOf(answer) {
  if (Array.isArray(answer)) return answer
  return Array.isArray(answer?.results) ? answer.results : []
}
