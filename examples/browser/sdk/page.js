// The seed's useStream hook in plain JavaScript, on the official SDK through the Python relay.
//
// Bundled into page.bundle.js by esbuild: `python -m tests.jssdk.npm page`, which runs
//   esbuild examples/browser/sdk/page.js --bundle --platform=browser --format=iife --target=es2020 \
//     --minify --legal-comments=eof --banner:js='/* ... */' --outfile=examples/browser/sdk/page.bundle.js
// with @inferencesh/sdk 0.6.54 from npm.

import { inference, parseStatus, TaskStatusCompleted, TaskStatusFailed, TaskStatusCancelled } from '@inferencesh/sdk';

// The hosted API's status codes (HOSTED.md), shown by name.
const STATUS_NAMES = [
  'unknown', 'received', 'queued', 'dispatched', 'preparing', 'serving', 'setting_up', 'running',
  'cancelling', 'uploading', 'completed', 'failed', 'cancelled', 'rejected',
];
const statusName = (status) => STATUS_NAMES[parseStatus(status)] ?? String(status);

const api = document.querySelector('meta[name="inference-api"]')?.content || undefined;
const client = inference({ proxyUrl: '/api/inference/proxy', baseUrl: api });

const $ = (id) => document.getElementById(id);

/** What useStream keeps: the task, its status, the statuses seen, logs, output, error; run() and cancel(). */
function useStream(render) {
  const state = { task: null, status: 'idle', statuses: [], logs: [], output: null, error: '', running: false };
  let watch = null;

  const apply = (task) => {
    state.task = task;
    const name = statusName(task.status);
    if (state.statuses[state.statuses.length - 1] !== name) state.statuses.push(name);
    state.status = name;
    state.logs = (task.logs ?? []).flatMap((record) =>
      typeof record === 'string' ? [record] : String(record.content ?? '').split('\n').filter(Boolean));
    if (task.output) state.output = task.output;
    render(state);
  };

  async function run(app, input) {
    Object.assign(state, { task: null, status: 'starting', statuses: [], logs: [], output: null, error: '', running: true });
    render(state);
    try {
      const task = await client.run({ app, input }, { wait: false });
      apply(task);
      watch = client.tasks.watch(task, { onUpdate: apply, onPartialUpdate: apply });
      apply(await watch.done);
    } catch (error) {
      // run() rejects on a failed or cancelled task; the last update already says which.
      const code = state.task ? parseStatus(state.task.status) : -1;
      if (code !== TaskStatusCancelled) state.error = state.task?.error || error.message;
    } finally {
      state.running = false;
      watch = null;
      render(state);
    }
  }

  async function cancel() {
    if (!state.task) return;
    try {
      await client.cancel(state.task.id);  // the stream then brings cancelling and cancelled
    } catch (error) {
      state.error = error.message;
      render(state);
    }
  }

  return { state, run, cancel };
}

function render(state) {
  $('status').textContent = state.status;
  $('task-id').textContent = state.task ? state.task.id : '';
  $('statuses').replaceChildren(...state.statuses.map((name) => Object.assign(document.createElement('li'), { textContent: name })));
  $('logs').replaceChildren(...state.logs.map((line) => Object.assign(document.createElement('li'), { textContent: line })));
  const image = state.output && (state.output.image?.uri ?? state.output.image);
  if (typeof image === 'string') $('output').src = image;
  $('error').textContent = state.error;
  $('run').disabled = state.running;
  $('cancel').disabled = !state.running || !state.task;
  const code = state.task ? parseStatus(state.task.status) : -1;
  const over = [TaskStatusCompleted, TaskStatusFailed, TaskStatusCancelled].includes(code) || (!state.running && state.error);
  document.body.dataset.done = String(Boolean(over && !state.running));
}

const stream = useStream(render);

$('run-form').addEventListener('submit', (event) => {
  event.preventDefault();
  let extra = {};
  try {
    extra = JSON.parse($('extra').value || '{}');
  } catch {
    stream.state.error = 'More input is not JSON';
    render(stream.state);
    return;
  }
  stream.run($('app').value.trim(), { prompt: $('prompt').value, ...extra });
});
$('cancel').addEventListener('click', () => stream.cancel());
