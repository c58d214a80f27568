import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { UserError } from '../../../src-main/common/errors.js';
import {
  defaultWorkspaceDir,
  openWorkspace,
  resolveInWorkspace,
  toWorkspacePath,
} from '../../../src-main/store/workspace.js';
import { tempDir } from './helpers.js';

describe('workspace', () => {
  it('refuses a missing workspace unless asked to create it', () => {
    const dir = path.join(tempDir(), 'ws');
    expect(() => openWorkspace(dir)).toThrow(/does not exist/);
    const ws = openWorkspace(dir, { create: true });
    expect(ws.dir).toBe(path.resolve(dir));
    expect(existsSync(path.join(dir, 'upit.db'))).toBe(true);
    expect(existsSync(path.join(dir, 'runs'))).toBe(true);
    const run = ws.db.createRun({ kind: 'prepare' });
    expect(ws.runDir(run.id)).toBe(path.join(ws.dir, 'runs', String(run.id)));
    expect(existsSync(ws.runDir(run.id))).toBe(false);
    expect(existsSync(ws.ensureRunDir(run.id))).toBe(true);
    expect(() => ws.runDir(0)).toThrow(UserError);
    ws.close();
    const again = openWorkspace(dir);
    expect(again.db.getRun(run.id)?.kind).toBe('prepare');
    again.close();
  });

  it('refuses a directory without upit.db, and a file', () => {
    const dir = tempDir();
    expect(() => openWorkspace(dir)).toThrow(/not an UpIT workspace/);
    const f = path.join(dir, 'file');
    writeFileSync(f, 'x');
    expect(() => openWorkspace(f, { create: true })).toThrow(/must be a directory/);
  });

  it('defaults to $UPIT_WORKSPACE, else ~/.upit/workspace', () => {
    expect(defaultWorkspaceDir({ UPIT_WORKSPACE: '/data/ws' })).toBe('/data/ws');
    expect(defaultWorkspaceDir({ UPIT_WORKSPACE: '~/w' })).toBe(path.join(os.homedir(), 'w'));
    expect(defaultWorkspaceDir({})).toBe(path.join(os.homedir(), '.upit', 'workspace'));
    expect(defaultWorkspaceDir({ UPIT_WORKSPACE: '  ' })).toBe(path.join(os.homedir(), '.upit', 'workspace'));
  });
});

describe('path confinement', () => {
  const ws = { dir: path.resolve('/srv/ws') };

  it('resolves paths inside the workspace', () => {
    expect(resolveInWorkspace(ws, 'runs/3/step-100.safetensors')).toBe(
      path.join(ws.dir, 'runs/3/step-100.safetensors'),
    );
    expect(resolveInWorkspace(ws, './runs//3/../4/x')).toBe(path.join(ws.dir, 'runs/4/x'));
    expect(resolveInWorkspace(ws, '..foo')).toBe(path.join(ws.dir, '..foo'));
  });

  it.each([
    '../x',
    'runs/../../x',
    '..',
    '/etc/passwd',
    'C:\\Windows\\x',
    'C:x',
    '\\\\server\\share\\x',
    '',
    '.',
    'a\0b',
  ])('rejects %j', (p) => {
    expect(() => resolveInWorkspace(ws, p)).toThrow(UserError);
  });

  it('maps absolute paths inside the workspace to stored relative ones', () => {
    const dir = tempDir();
    mkdirSync(path.join(dir, 'runs', '7'), { recursive: true });
    expect(toWorkspacePath(dir, path.join(dir, 'runs', '7', 'a.safetensors'))).toBe('runs/7/a.safetensors');
    expect(() => toWorkspacePath(dir, path.join(dir, '..', 'elsewhere'))).toThrow(/not inside the workspace/);
    expect(() => toWorkspacePath(dir, dir)).toThrow(UserError);
  });
});
