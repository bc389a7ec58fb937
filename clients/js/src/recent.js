/** The last `limit` publication ids seen: the client's exactly-once memory. */
export class RecentIds {
  constructor(limit = 10000) {
    this.limit = limit
    this.ids = new Set()
  }

  /** True when `id` was seen before; otherwise remembers it and returns false. */
  seen(id) {
    if (this.ids.has(id)) return true
    this.ids.add(id)
    if (this.ids.size > this.limit) {
      // A Set iterates in insertion order: the first is the oldest.
      this.ids.delete(this.ids.values().next().value)
    }
    return false
  }
}
