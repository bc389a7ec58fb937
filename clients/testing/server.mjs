/**
 * Live PayChain servers for the JavaScript tests: the production launcher
 * (`python -m paychain.serve`, uvicorn) on free ports, on a migrated SQLite
 * database of the test's own and the tests' Redis, under a channel-layer
 * prefix of its own. The Python is the repository's .venv (PAYCHAIN_PYTHON
 * overrides it).
 */

import { spawn, execFileSync } from 'node:child_process'
import { createHash, randomUUID } from 'node:crypto'
import {
  closeSync,
  copyFileSync,
  existsSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs'
import { request as httpRequest } from 'node:http'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

// A string, not a URL: jsdom replaces the global URL.
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
export const PYTHON = process.env.PAYCHAIN_PYTHON || join(ROOT, '.venv', 'bin', 'python')
export const REDIS_URL = process.env.PAYCHAIN_TEST_REDIS_URL || 'redis://127.0.0.1:6379/0'
export const PASSWORD = 'a-long-test-passphrase-42'

const running = new Set()
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL')
})

export function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolvePort(port))
    })
  })
}

export const sleep = (ms) => new Promise((done) => setTimeout(done, ms))

/** Resolves with `predicate()` once it is truthy; rejects after `timeout` ms. */
export async function waitFor(predicate, { timeout = 10000, interval = 25, what = 'condition' } = {}) {
  const deadline = Date.now() + timeout
  for (;;) {
    const result = await predicate()
    if (result) return result
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeout} ms waiting for ${what}`)
    await sleep(interval)
  }
}

/**
 * One deployment: a database, a Redis prefix and a service key, shared by
 * every server process started from it (as processes behind one balancer).
 */
export class Deployment {
  constructor({ env = {} } = {}) {
    this.dir = mkdtempSync(join(tmpdir(), 'paychain-js-'))
    this.apiKey = `test-key-${randomUUID()}`
    this.env = {
      ...cleanEnv(),
      PYTHONUNBUFFERED: '1',
      LOG_LEVEL: 'INFO',
      DJANGO_DEBUG: 'true',
      DATABASE_URL: `sqlite:///${join(this.dir, 'db.sqlite3')}`,
      REDIS_URL,
      BROADCAST_API_KEYS: this.apiKey,
      CHANNEL_LAYER_PREFIX: `jstest-${randomUUID().slice(0, 12)}`,
      REALTIME_ALLOW_ANONYMOUS: 'true',
      // Generous: these tests are not about throttling.
      THROTTLE_LOGIN_RATE: '1000/min',
      THROTTLE_REGISTER_RATE: '1000/min',
      ...env,
    }
    copyFileSync(migratedTemplate(this.env), join(this.dir, 'db.sqlite3'))
    this.servers = []
  }

  /** Start a server process (on `port`, or a free one); resolves once it answers. */
  async start({ port } = {}) {
    const server = new LiveServer(this, port ?? (await freePort()))
    this.servers.push(server)
    await server.start()
    return server
  }

  /** Stop every server and remove the database. */
  async close() {
    await Promise.all(this.servers.map((server) => server.stop()))
    rmSync(this.dir, { recursive: true, force: true })
  }
}

export class LiveServer {
  constructor(deployment, port) {
    this.deployment = deployment
    this.port = port
    this.child = null
    this.logPath = null
  }

  get url() {
    return `http://127.0.0.1:${this.port}`
  }

  get wsUrl() {
    return `ws://127.0.0.1:${this.port}/ws`
  }

  async start({ timeout = 30000 } = {}) {
    this.logPath = join(this.deployment.dir, `server-${this.port}-${Date.now()}.log`)
    const log = openSync(this.logPath, 'a')
    const args = ['-m', 'paychain.serve', '--host', '127.0.0.1', '--port', String(this.port)]
    const child = spawn(PYTHON, args, {
      cwd: ROOT,
      env: this.deployment.env,
      stdio: ['ignore', log, log],
    })
    closeSync(log)
    this.child = child
    running.add(child)
    child.on('exit', () => running.delete(child))
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`Server exited early:\n${this.log()}`)
        try {
          return (await this.request('/stats', { timeout: 1000 })).status === 200
        } catch {
          return false
        }
      },
      { timeout, interval: 100, what: `server on port ${this.port}` },
    )
    return this
  }

  log() {
    try {
      return readFileSync(this.logPath, 'utf8')
    } catch {
      return ''
    }
  }

  /** Die without cleaning up, as a crashed process does. */
  async kill() {
    await this.#end('SIGKILL')
  }

  async stop() {
    await this.#end('SIGINT')
  }

  async #end(signal) {
    const child = this.child
    if (child === null || child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise((done) => child.once('exit', done))
    child.kill(signal)
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
    await exited
    clearTimeout(timer)
  }

  /** An HTTP request with node:http (the same under jsdom, which replaces fetch's globals). */
  request(path, { method = 'GET', body, headers = {}, timeout = 10000 } = {}) {
    const payload = body === undefined ? undefined : JSON.stringify(body)
    return new Promise((resolveResponse, reject) => {
      const req = httpRequest(
        this.url + path,
        { method, timeout, headers: { 'Content-Type': 'application/json', ...headers } },
        (response) => {
          let text = ''
          response.setEncoding('utf8')
          response.on('data', (chunk) => (text += chunk))
          response.on('end', () => {
            let json = null
            try {
              json = JSON.parse(text)
            } catch {
              // not JSON
            }
            resolveResponse({ status: response.statusCode, body: json, text })
          })
          response.on('error', reject)
        },
      )
      req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out`)))
      req.on('error', reject)
      req.end(payload)
    })
  }

  /** POST /broadcast with the deployment's service key; returns the 202 body. */
  async publish(message) {
    const { status, body, text } = await this.request('/broadcast', {
      method: 'POST',
      body: message,
      headers: { Authorization: `Api-Key ${this.deployment.apiKey}` },
    })
    if (status !== 202) throw new Error(`broadcast answered ${status}: ${text}`)
    return body
  }

  /** Register a user; returns `{id, username, getToken}`: getToken gives a fresh access token. */
  async register({ userType = 'worker', username = `js${randomUUID().slice(0, 10)}` } = {}) {
    const created = await this.request('/api/auth/register/', {
      method: 'POST',
      body: { username, password: PASSWORD, user_type: userType },
    })
    if (created.status !== 201) throw new Error(`register answered ${created.status}: ${created.text}`)
    // As an app does: log in once, then refresh (a login hashes the password: slow).
    let refresh = null
    const getToken = async () => {
      const { status, body, text } =
        refresh === null
          ? await this.request('/api/auth/token/', {
              method: 'POST',
              body: { username, password: PASSWORD },
            })
          : await this.request('/api/auth/token/refresh/', { method: 'POST', body: { refresh } })
      if (status !== 200) throw new Error(`token answered ${status}: ${text}`)
      refresh = body.refresh ?? refresh
      return body.access
    }
    return { id: created.body.id, username, getToken }
  }
}

/**
 * A migrated SQLite file, made once per state of the migrations (and of the
 * settings and requirements) and reused by every deployment
 * (migrating costs seconds).
 */
function migratedTemplate(env) {
  const hash = createHash('sha256')
  // INSTALLED_APPS and the pinned packages bring migrations of their own.
  for (const file of ['paychain/settings.py', 'requirements.txt']) {
    const { size, mtimeMs } = statSync(join(ROOT, file))
    hash.update(`${file}:${size}:${mtimeMs}\n`)
  }
  for (const app of readdirSync(ROOT)) {
    const folder = join(ROOT, app, 'migrations')
    if (!existsSync(folder)) continue
    for (const name of readdirSync(folder).sort()) {
      if (!name.endsWith('.py')) continue
      const { size, mtimeMs } = statSync(join(folder, name))
      hash.update(`${app}/${name}:${size}:${mtimeMs}\n`)
    }
  }
  const template = join(tmpdir(), `paychain-js-template-${hash.digest('hex').slice(0, 16)}.sqlite3`)
  if (!existsSync(template)) {
    const partial = `${template}.${process.pid}.partial`
    execFileSync(PYTHON, ['manage.py', 'migrate', '--noinput', '-v0'], {
      cwd: ROOT,
      env: { ...env, DATABASE_URL: `sqlite:///${partial}` },
      stdio: ['ignore', 'inherit', 'inherit'],
    })
    renameSync(partial, template) // atomic: a concurrent run sees all or nothing
  }
  return template
}

function cleanEnv() {
  const env = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (/^(DJANGO_|REDIS_URL|DATABASE_URL|BROADCAST_API_KEYS|REALTIME_|CHANNEL_LAYER_)/.test(key)) continue
    env[key] = value
  }
  return env
}
