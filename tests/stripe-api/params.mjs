// Typing and checking decoded form parameters the way Stripe reports a bad
// one: a 400 `invalid_request_error` naming the parameter in bracket form.

import { invalid, missing } from './state.mjs';

/** Refuses any parameter of `params` not in `allowed`; `prefix` names nested ones. */
export function onlyKnown(params, allowed, prefix = '') {
  for (const key of Object.keys(params)) {
    if (!allowed.includes(key)) {
      const param = prefix ? `${prefix}[${key}]` : key;
      throw invalid(`Received unknown parameter: ${param}`, { code: 'parameter_unknown', param });
    }
  }
}

export function requireParam(params, name) {
  const value = params[name];
  if (value === undefined || value === '') throw missing(name);
  return value;
}

export function string(value, param, max = 5000) {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw invalid(`Invalid string: ${param} must be a string`, { param });
  if (value.length > max) {
    throw invalid(`Invalid string: ${param} must be at most ${max} characters`, { code: 'string_length', param });
  }
  return value;
}

export function integer(value, param, { min = -Infinity } = {}) {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !/^-?\d+$/.test(value)) {
    throw invalid(`Invalid integer: ${typeof value === 'string' ? value : param}`, {
      code: 'parameter_invalid_integer',
      param,
    });
  }
  const n = Number(value);
  if (n < min) {
    throw invalid(`This value must be greater than or equal to ${min}.`, { code: 'parameter_invalid_integer', param });
  }
  return n;
}

export function boolean(value, param) {
  if (value === undefined) return undefined;
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw invalid(`Invalid boolean: ${typeof value === 'string' ? value : param}`, { param });
}

export function hash(value, param) {
  if (value === undefined || value === '') return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw invalid(`Invalid object: ${param} must be a hash`, { param });
  }
  return value;
}

export function array(value, param) {
  if (value === undefined || value === '') return undefined;
  if (!Array.isArray(value)) throw invalid(`Invalid array: ${param} must be an array`, { param });
  return value;
}

export function url(value, param) {
  const text = string(value, param);
  if (text === undefined) return undefined;
  let parsed;
  try {
    parsed = new URL(text);
  } catch {
    throw invalid(`Not a valid URL: ${param}`, { code: 'url_invalid', param });
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw invalid(`Not a valid URL: ${param}`, { code: 'url_invalid', param });
  }
  return text;
}

/**
 * `metadata` as Stripe keeps it: string values, keys of at most 40
 * characters, values of at most 500, 50 keys. An empty string (what a
 * client sends for "none") is an empty map.
 */
export function metadata(value, param = 'metadata') {
  const map = hash(value, param) ?? {};
  const keys = Object.keys(map);
  if (keys.length > 50) throw invalid(`Invalid ${param}: at most 50 keys`, { param });
  const out = {};
  for (const key of keys) {
    const at = `${param}[${key}]`;
    if (key.length > 40) throw invalid(`Invalid ${param}: keys must be at most 40 characters (${key})`, { param: at });
    if (typeof map[key] !== 'string') throw invalid(`Invalid ${param}: values must be strings (${key})`, { param: at });
    if (map[key].length > 500) throw invalid(`Invalid ${param}: values must be at most 500 characters`, { param: at });
    // An empty value unsets the key.
    if (map[key] !== '') out[key] = map[key];
  }
  return out;
}
