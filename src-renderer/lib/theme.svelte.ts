/** Light/dark theme: follows the system (prefers-color-scheme) unless the user picked one. */
export type ThemeMode = 'system' | 'light' | 'dark';
const KEY = 'upit.theme';

export class Theme {
  mode = $state<ThemeMode>('system');
  systemDark = $state(false);
  readonly effective: 'light' | 'dark' = $derived(
    this.mode === 'system' ? (this.systemDark ? 'dark' : 'light') : this.mode,
  );

  private readonly storage: Storage | undefined;

  constructor(win: Window = window) {
    try {
      this.storage = win.localStorage;
    } catch {
      this.storage = undefined; // storage blocked: the choice lasts for this page only
    }
    const mq = win.matchMedia?.('(prefers-color-scheme: dark)');
    this.systemDark = mq?.matches ?? false;
    mq?.addEventListener('change', (e) => (this.systemDark = e.matches));
    const saved = this.read();
    if (saved) this.mode = saved;
  }

  private read(): ThemeMode | null {
    try {
      const saved = this.storage?.getItem(KEY);
      return saved === 'light' || saved === 'dark' || saved === 'system' ? saved : null;
    } catch {
      return null;
    }
  }

  set(mode: ThemeMode): void {
    this.mode = mode;
    try {
      this.storage?.setItem(KEY, mode);
    } catch {
      // ignore
    }
  }

  /** system → light → dark → system. */
  cycle(): void {
    this.set(this.mode === 'system' ? 'light' : this.mode === 'light' ? 'dark' : 'system');
  }
}
