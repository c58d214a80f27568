/**
 * A strict JSON parser for untrusted headers and indexes: standard JSON, but duplicate
 * object keys are an error (JSON.parse silently keeps the last one) and nesting is bounded
 * (no stack overflow on hostile input). Errors are `JsonError`s with a one-line message.
 */
export class JsonError extends Error {
  override readonly name = 'JsonError';
}

const WS = new Set([0x20, 0x09, 0x0a, 0x0d]);
const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

export function parseJsonStrict(text: string, maxDepth = 64): unknown {
  let i = 0;

  const skipWs = (): void => {
    while (i < text.length && WS.has(text.charCodeAt(i))) i++;
  };
  const fail = (what: string): never => {
    const at = i < text.length ? `at position ${i}` : 'at end of input';
    throw new JsonError(`${what} ${at}`);
  };

  const parseString = (): string => {
    const start = i;
    i++; // opening quote
    for (;;) {
      if (i >= text.length) fail('unterminated string');
      const c = text.charCodeAt(i);
      if (c === 0x22) break;
      if (c === 0x5c) i += 2;
      else if (c < 0x20) fail('control character in string');
      else i++;
    }
    i++; // closing quote
    try {
      return JSON.parse(text.slice(start, i)) as string;
    } catch {
      i = start;
      return fail('invalid string escape');
    }
  };

  const parseValue = (depth: number): unknown => {
    skipWs();
    if (i >= text.length) fail('unexpected end of input');
    const c = text[i];
    if (c === '{') {
      if (depth >= maxDepth) fail('nesting too deep');
      i++;
      const obj: Record<string, unknown> = {};
      const seen = new Set<string>();
      skipWs();
      if (text[i] === '}') {
        i++;
        return obj;
      }
      for (;;) {
        skipWs();
        if (text[i] !== '"') fail('expected a string key');
        const keyAt = i;
        const key = parseString();
        if (seen.has(key)) {
          i = keyAt;
          fail(`duplicate key ${JSON.stringify(key)}`);
        }
        seen.add(key);
        skipWs();
        if (text[i] !== ':') fail("expected ':'");
        i++;
        const v = parseValue(depth + 1);
        Object.defineProperty(obj, key, { value: v, enumerable: true, writable: true, configurable: true });
        skipWs();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return obj;
        }
        fail("expected ',' or '}'");
      }
    }
    if (c === '[') {
      if (depth >= maxDepth) fail('nesting too deep');
      i++;
      const arr: unknown[] = [];
      skipWs();
      if (text[i] === ']') {
        i++;
        return arr;
      }
      for (;;) {
        arr.push(parseValue(depth + 1));
        skipWs();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return arr;
        }
        fail("expected ',' or ']'");
      }
    }
    if (c === '"') return parseString();
    if (text.startsWith('true', i)) {
      i += 4;
      return true;
    }
    if (text.startsWith('false', i)) {
      i += 5;
      return false;
    }
    if (text.startsWith('null', i)) {
      i += 4;
      return null;
    }
    NUMBER.lastIndex = i;
    const m = NUMBER.exec(text);
    if (m) {
      i += m[0].length;
      return Number(m[0]);
    }
    return fail('unexpected character');
  };

  const v = parseValue(0);
  skipWs();
  if (i < text.length) fail('unexpected trailing content');
  return v;
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
