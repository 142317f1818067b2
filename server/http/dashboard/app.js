// The attune dashboard: polls the JSON endpoints of attuned's --http address and redraws the job
// list and the selected job's charts without reloading the page.
//   GET /api/jobs                      every 2 s, the job list
//   GET /api/jobs/<id>                 every 2 s, the selected job's spec, state and adapter size
//   GET /api/jobs/<id>/events?after=N  every second, only the events not seen yet
// The sweeps and their comparison table are sweep.js's.
'use strict';

const state = {
  selected: null,   // job id shown on the right
  after: 0,         // last event sequence received for the selected job
  steps: [],        // [{step, trainLoss, learningRates, tokensPerSecond, samplesPerSecond}]
  evals: [],        // [{step, evalLoss}]
  log: [],
};

async function getJson(url) {
  const res = await fetch(url, {cache: 'no-store'});
  const body = await res.json();
  if (!res.ok) throw new Error(body.error || res.statusText);
  return body;
}

function el(tag, props, children) {
  const e = document.createElement(tag);
  Object.assign(e, props || {});
  for (const c of children || []) e.append(c);
  return e;
}

function formatBytes(n) {
  if (!n) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return n.toFixed(i === 0 ? 0 : 1) + ' ' + units[i];
}

function fmt(v, digits) {
  return (v === undefined || v === null) ? '—' : Number(v).toFixed(digits === undefined ? 4 : digits);
}

function selectJob(id) {
  if (typeof hideSweep === 'function') hideSweep();  // sweep.js
  if (state.selected === id) return;
  state.selected = id;
  state.after = 0;
  state.steps = [];
  state.evals = [];
  state.log = [];
  history.replaceState(null, '', '#job=' + encodeURIComponent(id));
  document.getElementById('job-pane').hidden = false;
  redrawCharts();
  refreshJob();
  pollEvents();
}

async function refreshJobs() {
  try {
    const {jobs} = await getJson('/api/jobs');
    document.getElementById('conn').textContent = '';
    const counts = {};
    for (const j of jobs) counts[j.state] = (counts[j.state] || 0) + 1;
    document.getElementById('summary').textContent =
        Object.entries(counts).map(([s, n]) => n + ' ' + s.toLowerCase()).join(', ');
    const body = document.querySelector('#jobs tbody');
    body.replaceChildren(...jobs.map(j => {
      const row = el('tr', {className: j.id === state.selected ? 'selected' : ''}, [
        el('td', {title: j.id, textContent: j.name || j.id}),
        el('td', {}, [el('span', {className: 'state ' + j.state, textContent: j.state})]),
        el('td', {textContent: j.step === undefined ? '—' : j.step + '/' + j.totalSteps}),
        el('td', {textContent: fmt(j.trainLoss)}),
      ]);
      row.dataset.jobId = j.id;
      row.addEventListener('click', () => selectJob(j.id));
      return row;
    }));
    document.getElementById('no-jobs').hidden = jobs.length > 0;
    if (!state.selected && !sweepState.selected && jobs.length > 0) {
      const wanted = new URLSearchParams(location.hash.slice(1)).get('job');
      const pick = jobs.find(j => j.id === wanted) || jobs.find(j => j.state === 'RUNNING') || jobs[0];
      selectJob(pick.id);
    }
  } catch (e) {
    document.getElementById('conn').textContent = 'server unreachable: ' + e.message;
  }
}

async function refreshJob() {
  const id = state.selected;
  if (!id) return;
  let job;
  try { job = await getJson('/api/jobs/' + encodeURIComponent(id)); } catch (e) { return; }
  if (id !== state.selected) return;
  const s = job.spec;
  document.getElementById('job-title').textContent = (job.name || 'job') + ' · ' + job.id;
  const latest = job.latestStep || {};
  const facts = [
    ['state', job.state],
    ['step', latest.step === undefined ? '—' : latest.step + ' / ' + latest.totalSteps],
    ['train loss', fmt(latest.trainLoss)],
    ['eval loss', fmt(job.latestEval && job.latestEval.evalLoss)],
    ['accuracy', fmt(job.latestEval && job.latestEval.accuracy, 3)],
    ['tokens/s', fmt(latest.tokensPerSecond, 0)],
    ['samples/s', fmt(latest.samplesPerSecond, 1)],
    ['adapter', formatBytes(job.adapterBytes) + (job.adapterRatio ?
        ' (' + (100 * job.adapterRatio).toFixed(2) + '% of ' + formatBytes(job.baseModelBytes) + ')' : '')],
    ['trainable', job.trainableParameters ? job.trainableParameters.toLocaleString() + ' of ' +
        job.totalParameters.toLocaleString() + ' parameters' : '—'],
    ['devices', (job.devices || []).join(', ') || '—'],
  ];
  const memory = latest.deviceMemory;  // CUDA jobs only
  if (memory) {
    facts.push(['device memory', formatBytes(memory.allocatedBytes) + ' allocated, ' +
        formatBytes(memory.reservedBytes) + ' reserved, peak ' + formatBytes(memory.peakAllocatedBytes)]);
  }
  // The GLUE metrics the task reports (F1 and MCC: classification; Pearson, Spearman: regression).
  const lastEval = job.latestEval || {};
  for (const [label, key] of [['f1', 'f1'], ['mcc', 'mcc'], ['pearson', 'pearson'],
                              ['spearman', 'spearman']]) {
    if (lastEval[key] !== undefined) facts.push([label, fmt(lastEval[key], 3)]);
  }
  if (s && s.evalMetric) facts.push(['best by', 'eval ' + s.evalMetric]);
  if (job.error) facts.push(['error', job.error]);
  const factsEl = document.getElementById('job-facts');
  factsEl.replaceChildren(...facts.map(([k, v]) =>
      el('span', {}, [el('b', {textContent: k + ': '}), String(v)])));
  factsEl.dataset.state = job.state;
  const ratios = Object.entries(s.lrRatios || {}).map(([p, r]) => p + '=' + r).join(', ') || 'none';
  const rows = [
    ['model', s.model], ['task', s.task], ['targets', (s.targets || []).join(', ')],
    ['lr ratios', ratios], ['method', s.method + (s.method === 'lora' ?
        ' (r=' + s.rank + ', alpha=' + s.alpha + ', dropout=' + s.dropout + (s.useRslora ? ', rsLoRA' : '') + ')' : '')],
    ['learning rate', s.learningRate + ' (' + s.schedule + ', warmup ' + s.warmupSteps + ')'],
    ['LoRA+ ratio', s.loraplusRatio], ['batch size', s.batchSize], ['max seq len', s.maxSeqLen],
    ['steps', s.maxSteps > 0 ? s.maxSteps : s.epochs + ' epoch(s)'], ['seed', s.seed],
    ['train data', s.train], ['validation data', s.validation || '—'],
  ];
  document.getElementById('job-spec').replaceChildren(...rows.map(([k, v]) =>
      el('tr', {}, [el('td', {textContent: k}), el('td', {textContent: String(v)})])));
}

// An eval event for the log: its loss and the GLUE metrics it carries.
function evalText(ev) {
  const metrics = ['accuracy', 'f1', 'mcc', 'pearson', 'spearman', 'perplexity']
      .filter(k => ev[k] !== undefined).map(k => k + ' ' + fmt(ev[k], 3));
  return ['loss ' + fmt(ev.evalLoss)].concat(metrics).join(' ');
}

async function pollEvents() {
  const id = state.selected;
  if (!id) return;
  let body;
  try {
    body = await getJson('/api/jobs/' + encodeURIComponent(id) + '/events?after=' + state.after);
  } catch (e) { return; }
  if (id !== state.selected || body.events.length === 0) return;
  for (const ev of body.events) {
    if (ev.sequence <= state.after) continue;  // never count an event twice
    state.after = ev.sequence;
    if (ev.type === 'step') state.steps.push(ev);
    else if (ev.type === 'eval') state.evals.push(ev);
    if (ev.type !== 'step') {
      state.log.push('#' + ev.sequence + ' ' + ev.type + ' ' +
          (ev.state || ev.message || (ev.evalLoss !== undefined ? evalText(ev) :
          (ev.adapterBytes !== undefined ? formatBytes(ev.adapterBytes) + ' at step ' + ev.step +
              (ev.best ? ' (best)' : '') : ''))));
    }
  }
  redrawCharts();
  const log = document.getElementById('job-log');
  log.replaceChildren(...state.log.slice(-200).map(t => el('li', {textContent: t})));
  if (body.events.length >= 1000) pollEvents();  // catch up on a long history at once
}

function redrawCharts() {
  drawChart(document.getElementById('loss-chart'), [
    {name: 'train', points: state.steps.filter(e => !e.skipped).map(e => [e.step, e.trainLoss])},
    {name: 'eval', dots: true, points: state.evals.map(e => [e.step, e.evalLoss])},
  ]);
  const groups = [...new Set(state.steps.flatMap(e => Object.keys(e.learningRates || {})))].sort();
  drawChart(document.getElementById('lr-chart'), groups.map(g => ({
    name: g, points: state.steps.filter(e => e.learningRates && g in e.learningRates)
                                .map(e => [e.step, e.learningRates[g]])})));
  drawChart(document.getElementById('tokens-chart'), [
    {name: 'tokens/s', points: state.steps.map(e => [e.step, e.tokensPerSecond])}]);
  drawChart(document.getElementById('samples-chart'), [
    {name: 'samples/s', color: '#2a9d5b', points: state.steps.map(e => [e.step, e.samplesPerSecond])}]);
}

refreshJobs();
setInterval(refreshJobs, 2000);
setInterval(refreshJob, 2000);
setInterval(pollEvents, 1000);
