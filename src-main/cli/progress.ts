/**
 * Progress for long CLI jobs: a one-line bar on a terminal (steps, tokens/s, ETA, loss),
 * plain periodic lines when stderr is not a terminal, or JSON lines on stdout with --json.
 */
export interface ProgressUpdate {
  step: number;
  total: number;
  loss?: number;
  tokensPerSec?: number;
  extra?: Record<string, number | string>;
}

export interface Progress {
  update(u: ProgressUpdate): void;
  log(message: string): void;
  done(summary?: string): void;
}

export interface ProgressOptions {
  label: string;
  json: boolean;
  stream?: NodeJS.WriteStream;
  now?: () => number;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const mm = String(m).padStart(2, '0');
  const ss = String(sec).padStart(2, '0');
  return h > 0 ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

export function renderBar(label: string, u: ProgressUpdate, elapsedSec: number, width = 24): string {
  const frac = u.total > 0 ? Math.min(1, u.step / u.total) : 0;
  const filled = Math.round(frac * width);
  const bar = '█'.repeat(filled) + '░'.repeat(width - filled);
  const eta = u.step > 0 ? (elapsedSec / u.step) * (u.total - u.step) : NaN;
  const parts = [`${label} ${bar} ${u.step}/${u.total}`];
  if (u.tokensPerSec !== undefined) parts.push(`${Math.round(u.tokensPerSec)} tok/s`);
  if (u.loss !== undefined) parts.push(`loss ${u.loss.toFixed(4)}`);
  for (const [k, v] of Object.entries(u.extra ?? {}))
    parts.push(`${k} ${typeof v === 'number' ? v.toPrecision(4) : v}`);
  parts.push(`${formatDuration(elapsedSec)}<${formatDuration(eta)}`);
  return parts.join(' · ');
}

export function createProgress(opts: ProgressOptions): Progress {
  const stream = opts.stream ?? process.stderr;
  const now = opts.now ?? (() => performance.now() / 1000);
  const start = now();
  const tty = !opts.json && stream.isTTY === true;
  let lastPlain = -Infinity;
  let drawn = false;

  const clear = (): void => {
    if (tty && drawn) stream.write('\r\x1b[2K');
    drawn = false;
  };

  return {
    update(u) {
      const elapsed = now() - start;
      if (opts.json) {
        process.stdout.write(JSON.stringify({ event: 'progress', label: opts.label, elapsed, ...u }) + '\n');
        return;
      }
      const line = renderBar(opts.label, u, elapsed);
      if (tty) {
        stream.write('\r\x1b[2K' + line.slice(0, (stream.columns || 120) - 1));
        drawn = true;
      } else if (elapsed - lastPlain >= 5 || u.step === u.total) {
        lastPlain = elapsed;
        stream.write(line + '\n');
      }
    },
    log(message) {
      if (opts.json) {
        process.stdout.write(JSON.stringify({ event: 'log', label: opts.label, message }) + '\n');
        return;
      }
      clear();
      stream.write(message + '\n');
    },
    done(summary) {
      clear();
      if (opts.json) {
        if (summary)
          process.stdout.write(JSON.stringify({ event: 'done', label: opts.label, summary }) + '\n');
        return;
      }
      if (summary) stream.write(summary + '\n');
    },
  };
}
