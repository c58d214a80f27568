/**
 * Where plans live for the GUI: the shipped ones (resources/plans) and the workspace's own
 * (<workspace>/plans, where a plan written in the GUI is saved). Requests name a plan, never a
 * path, so nothing outside those two folders is read.
 */
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join, resolve, sep } from 'node:path';
import { UserError } from '../../common/errors.js';
import { resourcePath } from '../../common/paths.js';
import { writeFileAtomic } from '../../io/atomic.js';
import type { PlanInfo } from '../../contract/experiments.js';
import { buildPlanGraph } from './graph.js';
import { parsePlan, readPlanFile } from './schema.js';

export const PLAN_EXTENSIONS = ['.yaml', '.yml', '.json'];

export function shippedPlansDir(): string {
  return resourcePath('plans');
}

export function workspacePlansDir(wsDir: string): string {
  return join(wsDir, 'plans');
}

function planFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => PLAN_EXTENSIONS.some((e) => f.endsWith(e)))
    .sort();
}

function stem(file: string): string {
  return file.replace(/\.(ya?ml|json)$/, '');
}

export function listPlans(wsDir: string): PlanInfo[] {
  const out: PlanInfo[] = [];
  for (const [source, dir] of [
    ['shipped', shippedPlansDir()],
    ['workspace', workspacePlansDir(wsDir)],
  ] as const) {
    for (const f of planFiles(dir)) {
      const base = { name: stem(f), source };
      try {
        const p = readPlanFile(join(dir, f));
        out.push({
          ...base,
          experiment: p.name,
          description: p.description,
          variants: p.variants.map((v) => v.name),
          seeds: p.seeds,
          jobs: buildPlanGraph(p).nodes.length,
          error: null,
        });
      } catch (e) {
        const msg = e instanceof Error ? e.message : String(e);
        out.push({
          ...base,
          experiment: null,
          description: null,
          variants: [],
          seeds: [],
          jobs: 0,
          error: msg,
        });
      }
    }
  }
  return out;
}

/** The file of a named plan (its folder only). */
export function planFileByName(wsDir: string, name: string, source: 'shipped' | 'workspace'): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) throw new UserError(`plan: '${name}' is not a plan name`);
  const dir = source === 'shipped' ? shippedPlansDir() : workspacePlansDir(wsDir);
  for (const ext of PLAN_EXTENSIONS) {
    const f = join(dir, `${name}${ext}`);
    if (existsSync(f)) return f;
  }
  throw new UserError(`plan: no ${source} plan named '${name}'`);
}

/** Validates plan text and saves it as <workspace>/plans/<experiment>.yaml; returns the file. */
export function savePlanText(wsDir: string, text: string): { file: string; experiment: string } {
  const dir = workspacePlansDir(wsDir);
  const p = parsePlan(text, 'plan');
  buildPlanGraph(p);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${p.name}.yaml`);
  writeFileAtomic(file, text.endsWith('\n') ? text : `${text}\n`);
  return { file, experiment: p.name };
}

/** A plan file a job may read: inside the shipped plans or the workspace's plans folder. */
export function confinePlanFile(wsDir: string, file: string): string {
  const abs = resolve(file);
  const inside = (dir: string) => abs.startsWith(resolve(dir) + sep);
  if (!inside(shippedPlansDir()) && !inside(workspacePlansDir(wsDir)))
    throw new UserError(`plan: ${file} is outside the shipped plans and ${workspacePlansDir(wsDir)}`);
  return abs;
}
