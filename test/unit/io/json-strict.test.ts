import { describe, expect, it } from 'vitest';
import { JsonError, parseJsonStrict } from '../../../src-main/io/json-strict.js';

describe('parseJsonStrict', () => {
  it('parses standard JSON like JSON.parse', () => {
    const text = '{"a": [1, -2.5e3, true, false, null, "x\\n\\u00e9"], "b": {}, "c": [], "__proto__": 1}';
    const v = parseJsonStrict(text) as Record<string, unknown>;
    expect(v).toEqual(JSON.parse(text));
    expect(Object.keys(v)).toContain('__proto__');
    expect(Object.getPrototypeOf(v)).toBe(Object.prototype);
  });

  it('rejects duplicate keys, also when spelled with escapes', () => {
    expect(() => parseJsonStrict('{"a": 1, "a": 2}')).toThrow(/duplicate key "a"/);
    expect(() => parseJsonStrict('{"a": 1, "\\u0061": 2}')).toThrow(/duplicate key "a"/);
    expect(() => parseJsonStrict('{"o": {"a": 1}, "p": {"a": 2}}')).not.toThrow();
  });

  it('rejects malformed input and deep nesting', () => {
    for (const bad of ['', '{', '{"a" 1}', '[1,]', '01', '"\\x"', '{"a":1} x', '"a\nb"', 'nul']) {
      expect(() => parseJsonStrict(bad), bad).toThrow(JsonError);
    }
    expect(() => parseJsonStrict('[[[1]]]', 2)).toThrow(/nesting too deep/);
    expect(parseJsonStrict('[[1]]', 2)).toEqual([[1]]);
  });
});
