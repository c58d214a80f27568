/**
 * A writer killed mid-write leaves its temporary (`<target>.tmp-<pid>…`) behind — for a model's
 * weights, gigabytes. The next write of the same target removes the temporaries of dead writers
 * and keeps those of live ones (a concurrent writer, this process).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { removeDeadTemps, writeFileAtomic } from '../../../src-main/io/atomic.js';
import { writeHfDir } from '../../../src-main/io/hf-dir.js';
import { writeSafetensors } from '../../../src-main/io/safetensors.js';

const root = mkdtempSync(join(tmpdir(), 'upit-temps-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** The pid of a process that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], {
    encoding: 'utf8',
  });
  return Number(r.stdout);
}

describe('temporaries of dead writers', () => {
  it('are removed by the next write of the same target; live writers and other targets are kept', () => {
    const dir = join(root, 'files');
    mkdirSync(dir);
    const dead = deadPid();
    const live = process.ppid; // the test runner: alive
    const names = [
      `model.safetensors.tmp-${dead}-3`, // dead writer of this target: removed
      `model.safetensors.tmp-${live}-1`, // live writer: kept
      `model.safetensors.tmp-${process.pid}-99`, // this process: kept
      `other.safetensors.tmp-${dead}-1`, // another target: kept
      `model.safetensors.tmpx-${dead}`, // not a temporary name: kept
    ];
    for (const n of names) writeFileSync(join(dir, n), 'partial');
    writeSafetensors(join(dir, 'model.safetensors'), [['w', { shape: [2], data: new Float32Array([1, 2]) }]]);
    expect(readdirSync(dir).sort()).toEqual([...names.slice(1), 'model.safetensors'].sort());

    writeFileSync(join(dir, `state.json.tmp-${dead}-7`), '{');
    writeFileAtomic(join(dir, 'state.json'), '{}\n');
    expect(existsSync(join(dir, `state.json.tmp-${dead}-7`))).toBe(false);
  });

  it('include a dead writer’s half-built model directory', () => {
    const target = join(root, 'models', 'expert-01');
    const stale = `${target}.tmp-${deadPid()}`;
    mkdirSync(stale, { recursive: true });
    writeFileSync(join(stale, 'model.safetensors.tmp-1-1'), 'partial');
    writeHfDir(target, {
      config: { a: 1 },
      tensors: [['w', { shape: [1], data: new Float32Array([0]) }]],
    });
    expect(existsSync(stale)).toBe(false);
    expect(readdirSync(join(root, 'models'))).toEqual(['expert-01']);
  });

  it('leaves a directory it cannot read alone', () => {
    expect(() => removeDeadTemps(join(root, 'no-such-dir', 'x.json'))).not.toThrow();
  });
});
