/**
 * The renderer's origin under Electron and the checks every IPC message passes: the sender
 * must be the top frame of one of our windows showing our app:// origin.
 */
import type { IpcMainInvokeEventLike } from './electron-api.js';
import { REPORT_STYLE_SOURCE } from '../csp.js';

export const APP_SCHEME = 'app';
export const APP_HOST = 'workbench';
export const APP_ORIGIN = `${APP_SCHEME}://${APP_HOST}`;
export const APP_ENTRY = `${APP_ORIGIN}/index.html`;

export const ELECTRON_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  `style-src 'self' ${REPORT_STYLE_SOURCE}`,
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

export function isAppUrl(url: string): boolean {
  try {
    const u = new URL(url);
    return u.protocol === `${APP_SCHEME}:` && u.host === APP_HOST;
  } catch {
    return false;
  }
}

/** True for a message from the main frame of a window we created, showing our origin. */
export function isTrustedSender(event: IpcMainInvokeEventLike, windowIds: ReadonlySet<number>): boolean {
  const frame = event.senderFrame;
  if (!frame || frame.parent !== null) return false;
  if (!windowIds.has(event.sender.id)) return false;
  return isAppUrl(frame.url);
}
