/**
 * A Hugging Face model directory: config.json, weights (single or sharded safetensors),
 * tokenizer.json (optional) and side files such as generation_config.json.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileError, isUserError, UserError } from '../common/errors.js';
import {
  fsyncDir,
  ioError,
  readJsonObject,
  removeDeadTemps,
  replaceDir,
  rmQuiet,
  writeFileAtomic,
} from './atomic.js';
import type { HostTensor } from './host-tensor.js';
import { loadTokenizer, saveTokenizer, TOKENIZER_FILE, type Tokenizer } from './tokenizer.js';
import { openWeights, writeWeights, type WeightSource } from './weights.js';

export interface HfModelDir {
  dir: string;
  configPath: string;
  /** config.json as parsed; the model layer validates its fields. */
  config: Record<string, unknown>;
  weights: WeightSource;
  tokenizer: Tokenizer | null;
}

export const CONFIG_FILE = 'config.json';

/** Read config.json, open the weights (lazily) and load tokenizer.json if present. Close `weights` when done. */
export function readHfDir(dir: string): HfModelDir {
  if (!fs.existsSync(dir)) throw fileError(dir, 'model directory not found');
  if (!fs.statSync(dir).isDirectory()) throw fileError(dir, 'not a directory');
  const configPath = path.join(dir, CONFIG_FILE);
  const config = readJsonObject(configPath);
  const tokenizer = fs.existsSync(path.join(dir, TOKENIZER_FILE)) ? loadTokenizer(dir) : null;
  const weights = openWeights(dir);
  return { dir, configPath, config, weights, tokenizer };
}

export interface WriteHfDirOptions {
  config: Record<string, unknown>;
  tensors: Iterable<[string, HostTensor]>;
  tokenizer?: Tokenizer | null;
  /** Copy side files (generation_config.json, README.md, …) from this model directory. */
  copyFilesFrom?: string;
  dtype?: 'F32' | 'BF16';
  maxShardBytes?: number;
}

/** Files never copied by `copyFilesFrom`: the ones writeHfDir writes, and weights in any format. */
const WEIGHT_FILE = /\.(safetensors|bin|pt|pth|ckpt|h5|msgpack|gguf|onnx)$|\.index\.json$/i;
const TOKENIZER_FILES = new Set([
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'tokenizer.model',
  'added_tokens.json',
  'vocab.json',
  'merges.txt',
]);

/**
 * Write a model directory atomically: everything goes into `<dir>.tmp-<pid>`, which then
 * replaces `dir` (an existing `dir` is moved aside and removed after the swap). With
 * `copyFilesFrom`, top-level side files of that directory are copied first (not weights,
 * not config.json, and not tokenizer files when a tokenizer is given).
 */
export function writeHfDir(dir: string, opts: WriteHfDirOptions): void {
  const target = path.resolve(dir);
  const tmp = `${target}.tmp-${process.pid}`;
  removeDeadTemps(target);
  rmQuiet(tmp);
  try {
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.mkdirSync(tmp);
    if (opts.copyFilesFrom !== undefined) {
      const src = opts.copyFilesFrom;
      let names: string[];
      try {
        names = fs.readdirSync(src);
      } catch (e) {
        throw ioError(src, 'cannot read directory', e);
      }
      for (const name of names) {
        if (name.startsWith('.') || name === 'config.json' || WEIGHT_FILE.test(name)) continue;
        if (opts.tokenizer && TOKENIZER_FILES.has(name)) continue;
        const from = path.join(src, name);
        if (!fs.statSync(from).isFile()) continue;
        try {
          fs.copyFileSync(from, path.join(tmp, name));
        } catch (e) {
          throw ioError(from, 'cannot copy', e);
        }
      }
    }
    writeFileAtomic(path.join(tmp, 'config.json'), JSON.stringify(opts.config, null, 2) + '\n');
    writeWeights(tmp, opts.tensors, {
      ...(opts.dtype ? { dtype: opts.dtype } : {}),
      ...(opts.maxShardBytes !== undefined ? { maxShardBytes: opts.maxShardBytes } : {}),
    });
    if (opts.tokenizer) saveTokenizer(tmp, opts.tokenizer);
    fsyncDir(tmp);
  } catch (e) {
    rmQuiet(tmp);
    // name the target, not the temporary directory, in errors from the files written into it
    if (isUserError(e)) throw new UserError(e.message.split(tmp).join(target));
    throw ioError(target, 'cannot write model directory', e);
  }

  replaceDir(tmp, target, 'cannot move model directory into place');
}
