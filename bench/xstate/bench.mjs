// The two benchmark charts of docs/performance.md in XState 5: the 10-state chain
// s0 -> ... -> s9 -> s0 on `next`, plain and with a guard on every transition
// (context.n >= 0, as `case.n >= 0` in bench/charts/chain_guard.yaml).
// Prints one JSON object per chart and method; bench/run takes the medians.
//   node bench.mjs [fires]
import { createMachine, createActor, getNextSnapshot } from 'xstate';

const fires = Number(process.argv[2] || 1000000);

function chain(guarded) {
  const states = {};
  for (let i = 0; i < 10; i++) {
    const t = { target: `s${(i + 1) % 10}` };
    if (guarded) t.guard = ({ context }) => context.n >= 0;
    states[`s${i}`] = { on: { next: t } };
  }
  return createMachine({ id: guarded ? 'chain_guard' : 'chain', context: { n: 0 }, initial: 's0', states });
}

const ev = { type: 'next' };

// The usual way: a running actor, one send per event.
function actorRate(machine, n) {
  const actor = createActor(machine);
  actor.start();
  for (let i = 0; i < 10000; i++) actor.send(ev); // warm-up (JIT)
  const t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) actor.send(ev);
  const s = Number(process.hrtime.bigint() - t) / 1e9;
  if (actor.getSnapshot().value !== `s${(n + 10000) % 10}`) throw new Error('chain out of step');
  actor.stop();
  return n / s;
}

// The pure transition function: no actor, snapshot in, snapshot out.
function pureRate(machine, n) {
  let snap = createActor(machine).getSnapshot();
  for (let i = 0; i < 10000; i++) snap = getNextSnapshot(machine, snap, ev);
  const t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) snap = getNextSnapshot(machine, snap, ev);
  const s = Number(process.hrtime.bigint() - t) / 1e9;
  if (snap.value !== `s${(n + 10000) % 10}`) throw new Error('chain out of step');
  return n / s;
}

for (const guarded of [false, true]) {
  const m = chain(guarded);
  const workload = guarded ? 'chain_guard' : 'chain';
  console.log(JSON.stringify({ bench: 'xstate', workload, method: 'actor.send', fires, fires_per_s: actorRate(m, fires) }));
  console.log(JSON.stringify({ bench: 'xstate', workload, method: 'getNextSnapshot', fires, fires_per_s: pureRate(m, fires) }));
}
