// Stripe's request encoding: application/x-www-form-urlencoded with
// bracket notation for nested objects and arrays (`metadata[org]=x`,
// `line_items[0][price]=p`, `expand[]=a`). Every leaf stays a string, as on
// the wire; each endpoint converts the ones it types.

/** A request that cannot be decoded into parameters. */
export class FormError extends Error {}

// `a[b][0][]` -> ["a", "b", "0", ""]
function segments(key) {
  const match = /^([^[\]]+)((?:\[[^[\]]*\])*)$/.exec(key);
  if (!match) return [key];
  const rest = [...match[2].matchAll(/\[([^[\]]*)\]/g)].map((m) => m[1]);
  return [match[1], ...rest];
}

// The first `n` segments written back in bracket notation.
const display = (parts, n) => parts[0] + parts.slice(1, n).map((p) => `[${p}]`).join('');

const isIndex = (segment) => segment === '' || /^\d+$/.test(segment);

function place(container, segment, value, path) {
  if (Array.isArray(container)) {
    if (!isIndex(segment)) throw new FormError(`Invalid array: ${path}`);
    if (segment === '') {
      container.push(value);
      return container.length - 1;
    }
    const index = Number(segment);
    if (index > 10000) throw new FormError(`Array index too large: ${path}`);
    if (container[index] === undefined) container[index] = value;
    return index;
  }
  if (!Object.hasOwn(container, segment)) container[segment] = value;
  return segment;
}

function insert(root, key, value) {
  const parts = segments(key);
  if (parts.some((p) => p === '__proto__' || p === 'constructor' || p === 'prototype')) {
    throw new FormError(`Invalid parameter name: ${key}`);
  }
  let node = root;
  for (let i = 0; i < parts.length - 1; i += 1) {
    const path = display(parts, i + 1);
    const child = isIndex(parts[i + 1]) ? [] : {};
    const at = place(node, parts[i], child, path);
    node = node[at];
    if (node === null || typeof node !== 'object' || Array.isArray(node) !== Array.isArray(child)) {
      throw new FormError(`Invalid value for ${key}: it is both a value and a hash or array`);
    }
  }
  const last = parts[parts.length - 1];
  if (Array.isArray(node)) {
    place(node, last, value, key);
  } else if (typeof node[last] === 'object' && node[last] !== null) {
    throw new FormError(`Invalid value for ${key}: it is both a value and a hash or array`);
  } else {
    // A repeated plain key keeps the last value, as form decoders do.
    node[last] = value;
  }
}

// Holes left by sparse indexes (`a[2]` without `a[0]`) become nulls, so
// validation reports the missing entry by its index.
function fillHoles(value) {
  if (Array.isArray(value)) return Array.from(value, (v) => (v === undefined ? null : fillHoles(v)));
  if (value && typeof value === 'object') {
    for (const k of Object.keys(value)) value[k] = fillHoles(value[k]);
  }
  return value;
}

/** Parses a form-encoded string (a body or a query) into nested parameters. */
export function parseForm(text) {
  const root = {};
  for (const [key, value] of new URLSearchParams(text)) insert(root, key, value);
  return fillHoles(root);
}

/** JSON with object keys sorted: equal parameters give equal text. */
export function canonical(value) {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}
