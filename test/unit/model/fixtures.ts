/** The PyTorch reference fixtures (test/fixtures/llama-*, made by make_llama_reference.py). */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const FIXTURES = ['gqa', 'tied-mha-f16', 'headdim-bf16', 'rope-llama3'] as const;
export type FixtureName = (typeof FIXTURES)[number];

const here = path.dirname(fileURLToPath(import.meta.url));

export function fixtureDir(name: string): string {
  return path.resolve(here, '../../fixtures', `llama-${name}`);
}

export interface Expected {
  inputs: number[][];
  logits: number[][][];
}

export function readExpected(name: string): Expected {
  return JSON.parse(fs.readFileSync(path.join(fixtureDir(name), 'expected.json'), 'utf8')) as Expected;
}
