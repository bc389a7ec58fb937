// Building DOM from data: text always goes in as text (textContent), never as
// markup, so a job titled `<img src=x onerror=…>` shows as those characters.

const SVG_NS = 'http://www.w3.org/2000/svg'

function build(node, attributes, children) {
  for (const [name, value] of Object.entries(attributes ?? {})) {
    if (value === undefined || value === null || value === false) continue
    if (name === 'text') node.textContent = String(value)
    else if (name === 'dataset') Object.assign(node.dataset, value)
    else if (name.startsWith('on') && typeof value === 'function') {
      node.addEventListener(name.slice(2), value)
    } else node.setAttribute(name, value === true ? '' : String(value))
  }
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue
    node.append(child instanceof Node ? child : document.createTextNode(String(child)))
  }
  return node
}

/** `el('li', {class: 'x', text: title})`, or children after the attributes. */
export function el(tag, attributes, ...children) {
  return build(document.createElement(tag), attributes, children)
}

export function svg(tag, attributes, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attributes, children)
}

export function clear(node) {
  node.replaceChildren()
  return node
}

export const $ = (id) => document.getElementById(id)
