/** Context keys: the API client and theme are provided by App and read by any view. */
import { getContext, setContext } from 'svelte';
import type { ApiClient } from './api.js';
import type { Theme } from './theme.svelte.js';

export const API_CONTEXT = Symbol('api');
export const THEME_CONTEXT = Symbol('theme');

export function provideApi(client: ApiClient): void {
  setContext(API_CONTEXT, client);
}

export function useApi(): ApiClient {
  const c = getContext<ApiClient | undefined>(API_CONTEXT);
  if (!c) throw new Error('no API client in context');
  return c;
}

export function provideTheme(theme: Theme): void {
  setContext(THEME_CONTEXT, theme);
}

export function useTheme(): Theme | undefined {
  return getContext<Theme | undefined>(THEME_CONTEXT);
}
