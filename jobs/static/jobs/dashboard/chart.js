// A small live line chart in inline SVG: one line per series, one point per
// second, the last `length` seconds.

import { svg, el, clear } from './dom.js'

const HEIGHT = 160
const PAD = { left: 34, right: 6, top: 8, bottom: 18 }
const PALETTE = ['#2563eb', '#16a34a', '#db2777', '#ea580c', '#7c3aed', '#0891b2', '#ca8a04', '#64748b']

export function createRateChart(canvas, legend, { length = 60 } = {}) {
  const series = new Map() // type -> number[] (per second, oldest first)
  let current = new Map() // type -> count in the running second
  const colors = new Map()

  function colorOf(type) {
    if (!colors.has(type)) colors.set(type, PALETTE[colors.size % PALETTE.length])
    return colors.get(type)
  }

  function count(type) {
    current.set(type, (current.get(type) ?? 0) + 1)
  }

  /** Close the running second and redraw. */
  function tick() {
    for (const type of current.keys()) {
      if (!series.has(type)) series.set(type, new Array(length).fill(0))
    }
    for (const [type, values] of series) {
      values.push(current.get(type) ?? 0)
      values.splice(0, values.length - length)
    }
    current = new Map()
    draw()
  }

  function draw() {
    // As wide as the page shows it, so that lines and labels keep their shape.
    const width = Math.max(200, Math.round(canvas.clientWidth || 600))
    canvas.setAttribute('viewBox', `0 0 ${width} ${HEIGHT}`)
    const top = Math.max(1, ...[...series.values()].flat())
    const x = (i) => PAD.left + (i * (width - PAD.left - PAD.right)) / (length - 1)
    const y = (v) => HEIGHT - PAD.bottom - (v * (HEIGHT - PAD.top - PAD.bottom)) / top
    clear(canvas)
    canvas.append(
      svg('line', { x1: PAD.left, y1: y(0), x2: width - PAD.right, y2: y(0), class: 'axis' }),
      svg('line', { x1: PAD.left, y1: y(top), x2: width - PAD.right, y2: y(top), class: 'grid' }),
      svg('text', { x: PAD.left - 4, y: y(top) + 4, 'text-anchor': 'end', class: 'tick', text: top }),
      svg('text', { x: PAD.left - 4, y: y(0) + 4, 'text-anchor': 'end', class: 'tick', text: 0 }),
      svg('text', { x: PAD.left, y: HEIGHT - 4, class: 'tick', text: `-${length}s` }),
      svg('text', { x: width - PAD.right, y: HEIGHT - 4, 'text-anchor': 'end', class: 'tick', text: 'now' }),
    )
    clear(legend)
    for (const [type, values] of series) {
      const points = values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ')
      canvas.append(svg('polyline', { points, fill: 'none', stroke: colorOf(type), 'stroke-width': 2 }))
      const last = values[values.length - 1]
      // CSSOM, not a style attribute: the page's CSP allows no inline style.
      const swatch = el('span', { class: 'swatch' })
      swatch.style.backgroundColor = colorOf(type)
      legend.append(el('li', {}, swatch, `${type} ${last}/s`))
    }
  }

  draw()
  return { count, tick, draw }
}
