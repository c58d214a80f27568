/**
 * A model's weights as Hugging Face stores them: one `model.safetensors`, or shards
 * `model-00001-of-0000N.safetensors` listed by `model.safetensors.index.json`
 * (`{"metadata": {"total_size": bytes}, "weight_map": {tensor: shard file}}`).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileError } from '../common/errors.js';
import { ioError, unlinkQuiet, writeFileAtomic } from './atomic.js';
import type { HostTensor } from './host-tensor.js';
import { isPlainObject, JsonError, parseJsonStrict } from './json-strict.js';
import { SafetensorsFile, writeSafetensors, type TensorEntry } from './safetensors.js';

export const SINGLE_WEIGHTS_FILE = 'model.safetensors';
export const WEIGHTS_INDEX_FILE = 'model.safetensors.index.json';
/** Hugging Face's default shard size (5 GB). */
export const DEFAULT_MAX_SHARD_BYTES = 5_000_000_000;
const SHARD_NAME = /^model-\d{5}-of-\d{5}\.safetensors$/;

export interface WeightSource {
  readonly dir: string;
  /** Tensor names, shard by shard in file order. */
  names(): string[];
  /** Where a tensor lives: its header entry plus the absolute path of its file. */
  entry(name: string): TensorEntry & { file: string };
  read(name: string): HostTensor;
  has(name: string): boolean;
  close(): void;
}

export interface WriteWeightsOptions {
  dtype?: 'F32' | 'BF16';
  /** Shard when the total exceeds this many bytes (default 5 GB). */
  maxShardBytes?: number;
  metadata?: Record<string, string>;
}

class Weights implements WeightSource {
  private readonly where = new Map<string, SafetensorsFile>();

  constructor(
    readonly dir: string,
    private readonly files: SafetensorsFile[],
  ) {
    for (const f of files) for (const name of f.entries.keys()) this.where.set(name, f);
  }

  names(): string[] {
    return [...this.where.keys()];
  }

  has(name: string): boolean {
    return this.where.has(name);
  }

  private fileOf(name: string): SafetensorsFile {
    const f = this.where.get(name);
    if (!f) throw fileError(this.dir, `no tensor named ${JSON.stringify(name)} in the model weights`);
    return f;
  }

  entry(name: string): TensorEntry & { file: string } {
    const f = this.fileOf(name);
    const e = f.entries.get(name)!;
    return { ...e, shape: [...e.shape], file: f.path };
  }

  read(name: string): HostTensor {
    return this.fileOf(name).read(name);
  }

  close(): void {
    for (const f of this.files) f.close();
  }
}

function readJsonFile(file: string, strict: boolean): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw ioError(file, 'cannot read', e);
  }
  try {
    return strict ? parseJsonStrict(text) : (JSON.parse(text) as unknown);
  } catch (e) {
    if (e instanceof JsonError || e instanceof SyntaxError)
      throw fileError(file, `invalid JSON: ${e.message}`);
    throw e;
  }
}

function openSharded(dir: string, indexPath: string): WeightSource {
  const index = readJsonFile(indexPath, true);
  if (!isPlainObject(index)) throw fileError(indexPath, 'not a JSON object');
  const map = index.weight_map;
  if (!isPlainObject(map))
    throw fileError(indexPath, '"weight_map" must be an object mapping tensor names to shard files');
  const shardOrder: string[] = [];
  const expected = new Map<string, Set<string>>(); // shard → tensors the index puts there
  for (const [name, shard] of Object.entries(map)) {
    if (typeof shard !== 'string')
      throw fileError(indexPath, `weight_map[${JSON.stringify(name)}] is not a string`);
    if (shard === '' || shard === '.' || shard === '..' || /[/\\\0]/.test(shard)) {
      throw fileError(
        indexPath,
        `weight_map[${JSON.stringify(name)}]: shard ${JSON.stringify(shard)} is not a plain file name`,
      );
    }
    let set = expected.get(shard);
    if (!set) {
      set = new Set();
      expected.set(shard, set);
      shardOrder.push(shard);
    }
    set.add(name);
  }
  if (shardOrder.length === 0) throw fileError(indexPath, 'weight_map is empty');
  shardOrder.sort();

  const files: SafetensorsFile[] = [];
  try {
    const seenIn = new Map<string, string>(); // tensor → shard whose header holds it
    for (const shard of shardOrder) {
      const shardPath = path.join(dir, shard);
      if (!fs.existsSync(shardPath)) {
        const first = [...expected.get(shard)!][0]!;
        throw fileError(
          indexPath,
          `shard ${JSON.stringify(shard)} (holding ${JSON.stringify(first)}) not found`,
        );
      }
      const f = SafetensorsFile.open(shardPath);
      files.push(f);
      const want = expected.get(shard)!;
      for (const name of f.entries.keys()) {
        const other = seenIn.get(name);
        if (other !== undefined) {
          throw fileError(
            indexPath,
            `tensor ${JSON.stringify(name)} is in two shards: ${other} and ${shard}`,
          );
        }
        seenIn.set(name, shard);
        if (!want.has(name)) {
          const listed = map[name];
          throw fileError(
            indexPath,
            listed === undefined
              ? `shard ${shard} holds tensor ${JSON.stringify(name)}, which the index does not list`
              : `index puts tensor ${JSON.stringify(name)} in ${String(listed)} but shard ${shard} holds it`,
          );
        }
      }
      for (const name of want) {
        if (!f.entries.has(name)) {
          throw fileError(
            indexPath,
            `index puts tensor ${JSON.stringify(name)} in ${shard}, whose header lacks it`,
          );
        }
      }
    }
    return new Weights(dir, files);
  } catch (e) {
    for (const f of files) f.close();
    throw e;
  }
}

/** Open a model directory's weights: `model.safetensors`, else the sharded index. */
export function openWeights(dir: string): WeightSource {
  const single = path.join(dir, SINGLE_WEIGHTS_FILE);
  const index = path.join(dir, WEIGHTS_INDEX_FILE);
  if (fs.existsSync(single)) return new Weights(dir, [SafetensorsFile.open(single)]);
  if (fs.existsSync(index)) return openSharded(dir, index);
  if (!fs.existsSync(dir)) throw fileError(dir, 'model directory not found');
  throw fileError(dir, `no ${SINGLE_WEIGHTS_FILE} or ${WEIGHTS_INDEX_FILE}`);
}

function shardName(i: number, n: number): string {
  return `model-${String(i + 1).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`;
}

/**
 * Write weights into `dir`: a single `model.safetensors`, or shards plus index when the
 * total exceeds `maxShardBytes` (greedy, in the given order; a tensor larger than the
 * limit gets a shard of its own). Every file is written atomically and the index last;
 * weight files of the other layout left in `dir` by an earlier write are removed.
 * Holds references to all tensors until done; for streaming use SafetensorsWriter.
 */
export function writeWeights(
  dir: string,
  tensors: Iterable<[string, HostTensor]> | Map<string, HostTensor>,
  opts: WriteWeightsOptions = {},
): void {
  const list = [...tensors];
  const dtype = opts.dtype ?? 'F32';
  const elem = dtype === 'BF16' ? 2 : 4;
  const max = opts.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES;
  if (!(max > 0)) throw fileError(dir, `maxShardBytes must be positive, not ${max}`);
  const seen = new Set<string>();
  for (const [name] of list) {
    if (seen.has(name)) throw fileError(dir, `tensor ${JSON.stringify(name)} given twice`);
    seen.add(name);
  }
  const bytesOf = (t: HostTensor) => t.data.length * elem;
  const total = list.reduce((s, [, t]) => s + bytesOf(t), 0);
  fs.mkdirSync(dir, { recursive: true });
  const wo = { dtype, ...(opts.metadata ? { metadata: opts.metadata } : {}) };

  const written = new Set<string>();
  if (total <= max) {
    writeSafetensors(path.join(dir, SINGLE_WEIGHTS_FILE), list, wo);
    written.add(SINGLE_WEIGHTS_FILE);
  } else {
    const shards: [string, HostTensor][][] = [];
    let cur: [string, HostTensor][] = [];
    let curBytes = 0;
    for (const item of list) {
      const b = bytesOf(item[1]);
      if (cur.length > 0 && curBytes + b > max) {
        shards.push(cur);
        cur = [];
        curBytes = 0;
      }
      cur.push(item);
      curBytes += b;
    }
    if (cur.length > 0) shards.push(cur);
    const owner: [string, string][] = [];
    shards.forEach((shard, i) => {
      const file = shardName(i, shards.length);
      writeSafetensors(path.join(dir, file), shard, wo);
      written.add(file);
      for (const [name] of shard) owner.push([name, file]);
    });
    owner.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    const sortedMap = Object.fromEntries(owner);
    const index = { metadata: { total_size: total }, weight_map: sortedMap };
    writeFileAtomic(path.join(dir, WEIGHTS_INDEX_FILE), JSON.stringify(index, null, 2) + '\n');
    written.add(WEIGHTS_INDEX_FILE);
  }

  // Remove stale weights of an earlier write (they would shadow or confuse the new ones).
  for (const f of fs.readdirSync(dir)) {
    const stale = f === SINGLE_WEIGHTS_FILE || f === WEIGHTS_INDEX_FILE || SHARD_NAME.test(f);
    if (stale && !written.has(f)) unlinkQuiet(path.join(dir, f));
  }
}
