// The dashboard's sweep view: the list of sweeps (GET /api/sweeps every 2 s) and the selected
// sweep's comparison table with its jobs' train-loss curves overlaid, one colour per
// configuration (GET /api/sweeps/<id> every 2 s). The table is the one `attune compare` prints:
// the server computes both with common/sweep_table.h; this file only draws it.
'use strict';

const sweepState = {
  selected: null,  // sweep id shown on the right, instead of a job
};

function meanStd(m, digits) {
  if (!m || m.mean === null || m.mean === undefined) return '—';
  const std = (m.std === null || m.std === undefined) ? '' : ' ± ' + fmt(m.std, digits);
  return fmt(m.mean, digits) + std;
}

function configText(config) {
  return Object.entries(config).map(([k, v]) => k + '=' + v).join(' ');
}

async function refreshSweeps() {
  let body;
  try { body = await getJson('/api/sweeps'); } catch (e) { return; }
  const tbody = document.querySelector('#sweeps tbody');
  tbody.replaceChildren(...body.sweeps.map(s => {
    const states = Object.entries(s.states).map(([k, n]) => n + ' ' + k.toLowerCase()).join(', ');
    const row = el('tr', {className: s.id === sweepState.selected ? 'selected' : ''}, [
      el('td', {textContent: s.id}),
      el('td', {textContent: String(s.jobs)}),
      el('td', {textContent: states}),
    ]);
    row.dataset.sweepId = s.id;
    row.addEventListener('click', () => selectSweep(s.id));
    return row;
  }));
  document.getElementById('sweeps-block').hidden = body.sweeps.length === 0;
}

function selectSweep(id) {
  sweepState.selected = id;
  state.selected = null;  // app.js: no job selected while a sweep is shown
  document.getElementById('job-pane').hidden = true;
  document.getElementById('sweep-pane').hidden = false;
  history.replaceState(null, '', '#sweep=' + encodeURIComponent(id));
  refreshSweep();
}

// Called by app.js when a job is selected.
function hideSweep() {
  sweepState.selected = null;
  document.getElementById('sweep-pane').hidden = true;
}

function groupRow(t, g) {
  const params = g.trainableParameters.mean;
  return el('tr', {}, [
    ...t.gridFields.map(f => el('td', {textContent: f in g.config ? g.config[f] : '—'})),
    el('td', {textContent: g.seeds.length + '/' + g.jobs}),
    el('td', {textContent: meanStd(g.devMetric, 4)}),
    el('td', {textContent: params === null ? '—' : Math.round(params).toLocaleString()}),
    el('td', {textContent: formatBytes(g.adapterBytes.mean)}),
    el('td', {textContent: meanStd(g.wallSeconds, 1)}),
    el('td', {textContent: meanStd(g.stepsToConverge, 1)}),
    el('td', {textContent: meanStd(g.evalAuc, 4)}),
  ]);
}

async function refreshSweep() {
  const id = sweepState.selected;
  if (!id) return;
  let t;
  try {
    t = await getJson('/api/sweeps/' + encodeURIComponent(id));
  } catch (e) {
    document.getElementById('sweep-title').textContent = 'Sweep ' + id + ': ' + e.message;
    return;
  }
  if (id !== sweepState.selected) return;
  document.getElementById('sweep-title').textContent = 'Sweep ' + id;
  document.getElementById('sweep-note').textContent = t.metric + ': the best evaluation of each ' +
      'job (' + (t.higherIsBetter ? 'higher' : 'lower') + ' is better), mean ± std over seeds; ' +
      'steps to ' + Math.round(100 * t.convergenceFraction) + '% of the train-loss reduction; ' +
      'eval AUC = mean ' + t.metric + ' over the steps evaluated. Only SUCCEEDED jobs count.';
  const head = [...t.gridFields, 'jobs', t.metric, 'params', 'adapter', 'wall s',
                'steps to converge', 'eval AUC'];
  document.querySelector('#sweep-table thead').replaceChildren(
      el('tr', {}, head.map(h => el('th', {textContent: h}))));
  document.querySelector('#sweep-table tbody').replaceChildren(...t.groups.map(g => groupRow(t, g)));
  const keys = t.groups.map(g => configText(g.config));
  drawChart(document.getElementById('sweep-loss-chart'), t.curves.map(c => ({
    name: configText(c.config) + ' s' + c.seed,
    color: CHART_COLORS[Math.max(0, keys.indexOf(configText(c.config))) % CHART_COLORS.length],
    points: c.trainLoss,
  })));
}

if (location.hash.startsWith('#sweep=')) selectSweep(decodeURIComponent(location.hash.slice(7)));
refreshSweeps();
setInterval(refreshSweeps, 2000);
setInterval(refreshSweep, 2000);
