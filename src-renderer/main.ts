/** Renderer entry: picks the transport for the host that serves this page, mounts the app. */
import { mount } from 'svelte';
import './app.css';
import App from './App.svelte';
import { ApiClient } from './lib/api.js';
import { Router } from './lib/router.svelte.js';
import { Theme } from './lib/theme.svelte.js';
import { createElectronTransport, electronBridge } from './lib/transport-electron.js';
import { createHttpTransport } from './lib/transport-http.js';

const bridge = electronBridge();
const transport = bridge ? createElectronTransport(bridge) : createHttpTransport();
const client = new ApiClient(transport);

mount(App, {
  target: document.getElementById('app')!,
  props: { client, router: new Router(), theme: new Theme() },
});
