/**
 * CSP pieces both hosts share. The report preview (an `<iframe sandbox srcdoc>` in the Reports
 * view) inherits the page's policy, so the report's one inline stylesheet is allowed by hash —
 * nothing else inline is.
 */
import { createHash } from 'node:crypto';
import { REPORT_CSS } from '../report/html.js';

export const REPORT_STYLE_SOURCE = `'sha256-${createHash('sha256').update(REPORT_CSS).digest('base64')}'`;
