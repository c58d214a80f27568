import { Option } from 'commander';
import { UserError } from '../../common/errors.js';
import { DOMAINS, type DomainName } from '../../data/types.js';

export const BACKEND_NAMES = ['auto', 'tensorflow', 'webgpu', 'wasm', 'cpu'] as const;

export function backendOption(): Option {
  return new Option('--backend <name>', 'tensor backend').choices(BACKEND_NAMES).default('auto');
}

export function jsonOption(): Option {
  return new Option('--json', 'machine-readable JSON output');
}

export function parseIntOption(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n)) throw new UserError(`${name}: expected an integer, got '${value}'`);
    return n;
  };
}

export function parseFloatOption(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n)) throw new UserError(`${name}: expected a number, got '${value}'`);
    return n;
  };
}

/** "0.5,1,2e-3" → [0.5, 1, 0.002]; every element a finite number. */
export function parseNumberList(name: string, value: string): number[] {
  return value.split(',').map((p) => {
    const n = Number(p.trim());
    if (p.trim() === '' || !Number.isFinite(n)) throw new UserError(`${name}: '${p}' is not a number`);
    return n;
  });
}

/** "knowledge=0.4,arith=0.2" → { knowledge: 0.4, arith: 0.2 }, keys among `keys`. */
export function parseNamedNumbers<K extends string>(
  name: string,
  value: string,
  keys: readonly K[],
): Partial<Record<K, number>> {
  const out: Partial<Record<K, number>> = {};
  for (const part of value.split(',')) {
    const m = /^\s*([a-z_]+)\s*=\s*(\S+)\s*$/.exec(part);
    if (!m) throw new UserError(`${name}: expected name=number pairs separated by commas, got '${part}'`);
    const key = m[1] as K;
    if (!keys.includes(key))
      throw new UserError(`${name}: unknown name '${m[1]}' (expected ${keys.join(', ')})`);
    const n = Number(m[2]);
    if (!Number.isFinite(n)) throw new UserError(`${name}: ${key}: '${m[2]}' is not a number`);
    out[key] = n;
  }
  return out;
}

/**
 * `--difficulty`: "3" (every domain) or "arith=3,code=1" (those domains; the rest keep their
 * default). The range 1..5 is checked by the job's config schema, which names the field.
 */
export function parseDifficulty(value: string): number | Partial<Record<DomainName, number>> {
  if (/^\s*\d+\s*$/.test(value)) return Number(value);
  const levels = parseNamedNumbers('--difficulty', value, DOMAINS);
  for (const [k, v] of Object.entries(levels))
    if (!Number.isInteger(v)) throw new UserError(`--difficulty: ${k}: '${v}' is not an integer level 1–5`);
  return levels;
}

export function difficultyOption(): Option {
  return new Option(
    '--difficulty <level>',
    'embedded suite difficulty 1–5: one level for every domain, or per domain, e.g. arith=3,code=1 (the others keep their default)',
  ).argParser(parseDifficulty);
}

/** "1,2,3" → [1,2,3]; every element a non-negative integer. */
export function parseIdList(name: string, value: string): number[] {
  const parts = value.split(',').map((s) => s.trim());
  if (parts.length === 0 || parts.some((p) => p === ''))
    throw new UserError(`${name}: expected comma-separated integers, got '${value}'`);
  return parts.map((p) => {
    const n = Number(p);
    if (!Number.isInteger(n) || n < 0) throw new UserError(`${name}: '${p}' is not a non-negative integer`);
    return n;
  });
}

export function workspaceOption(): Option {
  return new Option(
    '--workspace <dir>',
    'workspace directory (default: $UPIT_WORKSPACE or ~/.upit/workspace)',
  );
}

/** Validates a job config built from options; the error names the field (`prepare: lora.r: …`). */
export function parseJobConfig<T>(
  label: string,
  schema: {
    safeParse(
      v: unknown,
    ):
      | { success: true; data: T }
      | { success: false; error: { issues: { path: PropertyKey[]; message: string }[] } };
  },
  raw: unknown,
): T {
  const parsed = schema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  throw new UserError(
    `${label}: ${issue?.path.map(String).join('.') || 'config'}: ${issue?.message ?? 'invalid'}`,
  );
}
