// The official @inferencesh/sdk (0.6.54, from npm) through our relay's /proxy, in Node.
//
// Bundled with esbuild by tests/jssdk (the SDK's files import each other without ".js").
// Environment: PROXY_URL (absolute: Node has no page origin), BASE_URL (the API the SDK
// believes it talks to: the relay's upstream), SCENARIO (run | follow | cancel | agent | all).
// Each scenario asserts what came back and prints one JSON line {"scenario", ...facts} for
// pytest to check against the server; any failed assertion exits non-zero.

import assert from 'node:assert/strict';
import {
  inference,
  parseStatus,
  TaskStatusCompleted,
  TaskStatusCancelled,
} from '@inferencesh/sdk';

const { PROXY_URL, BASE_URL, SCENARIO = 'all' } = process.env;
assert.ok(PROXY_URL && /^https?:\/\//.test(PROXY_URL), 'PROXY_URL must be absolute in Node');
const client = inference({ proxyUrl: PROXY_URL, baseUrl: BASE_URL });

function report(scenario, facts) {
  process.stdout.write(JSON.stringify({ scenario, ...facts }) + '\n');
}

async function runAndWait() {
  const task = await client.run({ app: 'infsh/flux-schnell', input: { prompt: 'a red fox' } });
  assert.equal(parseStatus(task.status), TaskStatusCompleted);
  assert.match(task.output.image, /^https?:\/\/.+\.png$/);
  assert.ok(task.id.startsWith('tsk_'));
  const again = await client.tasks.get(task.id);  // resolves to {data, messages}
  assert.equal(parseStatus(again.data.status), TaskStatusCompleted);
  assert.deepEqual(again.data.output, task.output);
  report('run', { id: task.id, status: task.status, output: task.output });
}

async function follow() {
  // Whole-task lines go to onUpdate, partial updates to onPartialUpdate (HOSTED.md): both are
  // the SDK's view of the task, in the order the stream delivered them.
  const seen = [];
  let updates = 0;
  const onAny = (task) => {
    if (seen[seen.length - 1] !== task.status) seen.push(task.status);
  };
  const task = await client.run(
    { app: 'infsh/flux-schnell', input: { prompt: 'a blue bird', steps: 40 } },  // long enough to be seen running
    { onUpdate: (t) => { updates += 1; onAny(t); }, onPartialUpdate: onAny },
  );
  assert.ok(updates >= 1, 'onUpdate was called');
  assert.equal(parseStatus(task.status), TaskStatusCompleted);
  assert.equal(seen[seen.length - 1], TaskStatusCompleted);
  for (let i = 1; i < seen.length; i++) assert.ok(seen[i] > seen[i - 1], `statuses in order: ${seen}`);
  assert.ok(seen.includes(7), 'running was seen');
  assert.match(task.output.image, /\.png$/);
  report('follow', { id: task.id, statuses: seen, updates, output: task.output, logs: task.logs ?? null });
}

async function cancel() {
  const task = await client.run({ app: 'infsh/sleep', input: { seconds: 600 } }, { wait: false });
  const watch = client.tasks.watch(task, {});
  const rejected = assert.rejects(watch.done, /task cancelled/);  // attached first: the stream may win the race
  const cancelled = await client.cancel(task.id);
  await rejected;
  const after = await client.tasks.get(task.id);
  assert.equal(parseStatus(after.data.status), TaskStatusCancelled);
  report('cancel', { id: task.id, answered: cancelled.data?.status ?? null, status: after.data.status });
}

async function agentTurn() {
  const agent = client.agent('infsh/assistant@latest');
  const messages = new Map();
  const deltas = [];
  const { userMessage, assistantMessage } = await agent.sendMessage('hello there', {
    onMessage: (m) => messages.set(m.id, m),
    onDelta: (d) => deltas.push(d.output),
  });
  assert.ok(agent.currentChatId, 'the chat has an id');
  const final = messages.get(assistantMessage.id);
  assert.ok(final, 'the assistant message was streamed');
  assert.equal(final.status, 'ready');
  const text = final.content.filter((c) => c.type === 'text').map((c) => c.text).join('');
  assert.equal(text, 'You said "hello there". This is turn 1 of our chat.');
  const chat = await agent.getChat();
  assert.equal(chat.id, agent.currentChatId);
  report('agent', { chat: agent.currentChatId, user: userMessage.id, text, deltas: deltas.length });
}

const scenarios = { run: runAndWait, follow, cancel, agent: agentTurn };
const chosen = SCENARIO === 'all' ? Object.keys(scenarios) : SCENARIO.split(',');
for (const name of chosen) await scenarios[name]();
