// The demo page: plain JavaScript, no build step. Every value from the server is shown with
// textContent (never innerHTML), so a payload such as <img onerror=…> stays text.
//
// Two clients side by side: the package's own (express-sse-hub/client, an ES module the demo
// server serves as /client.js, loaded below with import()) for the main stream, the POST token
// stream and the 429 demo; the browser's EventSource for the random events and the GET token stream.
'use strict';

/** express-sse-hub/client's EventSource, once /client.js is loaded. */
let HubEventSource;
const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const channels = params.get('channels') || 'news,sport,clock';
const pace = params.get('pace'); // tests make the random and token streams fast with ?pace=5
/** The one token the demo's /private routes accept (a real app would get one when signing in). */
const DEMO_TOKEN = 'demo-token';
$('token').value = params.get('token') || DEMO_TOKEN;
$('shared').checked = params.get('shared') === '1';

// ---------- event log ----------
const LOG_LIMIT = 200;
function log(name, data) {
  const li = document.createElement('li');
  const time = document.createElement('time');
  time.textContent = new Date().toLocaleTimeString();
  const label = document.createElement('span');
  label.className = 'name';
  label.textContent = name;
  const text = document.createElement('span');
  text.textContent = data;
  li.append(time, label, text);
  const list = $('log');
  list.prepend(li);
  while (list.children.length > LOG_LIMIT) list.lastElementChild.remove();
}

function addMessage(text) {
  const li = document.createElement('li');
  li.textContent = text;
  const list = $('messages');
  list.prepend(li);
  while (list.children.length > 50) list.lastElementChild.remove();
}

function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function show(value) {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

// ---------- the main stream: /private/subscribe, through the package's client ----------
let source;
function setState(state) {
  $('state').textContent = state;
  $('state').dataset.state = state;
}

// The client's lastEventId, not the event's: it also takes the id-only frame that tells a new
// connection its position (no event fires for it), so the page shows the position at once.
function track() {
  if (source.lastEventId) $('last-id').textContent = source.lastEventId;
}

/** Why the client is not connected, from its `error` event (status and the next attempt). */
function describeError(e) {
  const why = e.status === undefined ? 'connection lost' : `the server answered ${e.status}`;
  return e.reconnectIn === undefined ? `${why}; closed for good` : `${why}; retrying in ${(e.reconnectIn / 1000).toFixed(1)} s`;
}

function connect() {
  setState('connecting');
  $('channels').textContent = channels;
  const shared = $('shared').checked;
  source = new HubEventSource(`/private/subscribe?channels=${encodeURIComponent(channels)}`, {
    // A function: called before every connect, so an edited (or refreshed) token is used on reconnect.
    headers: () => ({ Authorization: `Bearer ${$('token').value}` }),
    shared,
  });
  const mode = shared ? 'Sharing one connection with the other tabs of this page.' : 'This tab has its own connection.';
  $('client-state').textContent = mode;
  source.addEventListener('open', () => {
    track();
    setState('open');
    $('client-state').textContent = mode;
  });
  source.addEventListener('error', (e) => {
    setState(source.readyState === HubEventSource.CLOSED ? 'closed' : 'reconnecting');
    $('client-state').textContent = describeError(e);
    log('error', e.message);
  });

  source.addEventListener('connected', (e) => {
    track();
    log('connected', e.data);
  });
  source.addEventListener('current-date', (e) => {
    track();
    $('clock').textContent = new Date(e.data).toLocaleString();
    log('current-date', e.data);
  });
  source.addEventListener('presence', (e) => {
    track();
    const { count } = parseJson(e.data);
    $('presence').textContent = String(count);
    log('presence', e.data);
  });
  // Broadcasts from POST /generateEvent: unnamed (message) or one of the form's names.
  for (const name of ['message', 'news', 'alert']) {
    source.addEventListener(name, (e) => {
      track();
      addMessage(show(parseJson(e.data)));
      log(name, e.data);
    });
  }
  source.addEventListener('catFact', (e) => {
    track();
    $('cat').textContent = e.data;
    addMessage(`🐱 ${e.data}`);
    log('catFact', e.data);
  });
  // History could not be replayed exactly (id unknown or too old): what follows is what remains.
  source.addEventListener('reset', (e) => {
    log('reset', e.data);
    showReset(parseJson(e.data));
  });
  source.addEventListener('shutdown', (e) => log('shutdown', e.data));
}

const RESET_REASONS = {
  'unknown-id': 'the server did not know the last event id (another deployment, or history was lost)',
  evicted: 'you were away longer than the history the server keeps',
  lost: 'the server lost its place in the log',
};

/** A `reset` said in words: some events of a channel may be missing; what follows is what remains. */
function showReset(reset) {
  const notice = $('reset-notice');
  const channel = reset && typeof reset.channel === 'string' ? reset.channel : 'a channel';
  const why = (reset && RESET_REASONS[reset.reason]) || 'history could not be replayed exactly';
  notice.textContent = `Reset on "${channel}": ${why}. Some events may be missing; the feed continues from what the server still holds.`;
  notice.hidden = false;
}

function reconnect() {
  if (source) source.close();
  connect();
  $('toggle-stream').textContent = 'Disconnect';
}

$('client-form').addEventListener('submit', (e) => {
  e.preventDefault();
  reconnect();
});

$('shared').addEventListener('change', () => {
  // In the address too, so a tab opened from it shares as well.
  const query = new URLSearchParams(location.search);
  if ($('shared').checked) query.set('shared', '1');
  else query.delete('shared');
  const search = query.toString();
  history.replaceState(null, '', `${location.pathname}${search === '' ? '' : `?${search}`}`);
  reconnect();
});

// ---------- retry later: two streams where one is allowed (/private/solo answers 429) ----------
for (const name of ['a', 'b']) {
  let solo;
  const state = $(`solo-${name}-state`);
  const button = $(`solo-${name}`);
  button.addEventListener('click', () => {
    if (solo) {
      solo.close();
      solo = undefined;
      state.textContent = 'closed';
      button.textContent = 'Open';
      return;
    }
    state.textContent = 'connecting…';
    button.textContent = 'Close';
    solo = new HubEventSource('/private/solo', { headers: { Authorization: `Bearer ${DEMO_TOKEN}` } });
    solo.addEventListener('open', () => (state.textContent = 'open: this tab holds the stream'));
    solo.addEventListener('error', (e) => (state.textContent = describeError(e)));
    solo.addEventListener('current-date', (e) => (state.textContent = `open: ${new Date(e.data).toLocaleTimeString()}`));
  });
}

$('toggle-stream').addEventListener('click', () => {
  if (source && source.readyState !== HubEventSource.CLOSED) {
    source.close();
    setState('closed');
    $('toggle-stream').textContent = 'Connect';
  } else reconnect();
});

// ---------- broadcast form ----------
async function post(body) {
  const response = await fetch('/generateEvent', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  const result = await response.json();
  $('broadcast-result').textContent = response.ok
    ? `Delivered to ${result.delivered} connection(s) on this server, id ${result.id}.`
    : `Refused (${response.status}): ${result.error}`;
}

$('broadcast-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const body = { channel: $('bc-channel').value, data: $('bc-data').value };
  if ($('bc-event').value) body.event = $('bc-event').value;
  post(body).catch((error) => ($('broadcast-result').textContent = `Failed: ${error.message}`));
});

$('cat-fact').addEventListener('click', async () => {
  let response;
  try {
    response = await fetch('/generateEvent');
  } catch {
    $('broadcast-result').textContent = 'Failed: the server cannot be reached.';
    return;
  }
  const result = await response.json().catch(() => ({}));
  $('broadcast-result').textContent = response.ok
    ? `Cat fact delivered to ${result.delivered} connection(s), id ${result.id}.`
    : `Refused (${response.status}): ${result.error ?? response.statusText}`;
});

// ---------- random events: /random-events ----------
let randomSource;
let randomStream;
const DIE_FACES = ['⚀', '⚁', '⚂', '⚃', '⚄', '⚅'];

function randomEnded(text) {
  if (randomSource) randomSource.close();
  randomSource = undefined;
  randomStream = undefined;
  $('random-state').textContent = text;
  $('random-start').disabled = false;
  $('random-stop').disabled = true;
  $('random-stop-server').disabled = true;
}

$('random-start').addEventListener('click', () => {
  $('random-count').textContent = '0';
  $('random-state').textContent = 'running';
  $('random-start').disabled = true;
  $('random-stop').disabled = false;
  randomSource = new EventSource(`/random-events${pace ? `?pace=${encodeURIComponent(pace)}` : ''}`);
  let count = 0;
  const counted = (e) => {
    count += 1;
    $('random-count').textContent = String(count);
    log(e.type, e.data);
  };
  randomSource.addEventListener('stream', (e) => {
    randomStream = parseJson(e.data).stream;
    $('random-stop-server').disabled = false;
  });
  randomSource.addEventListener('coinToss', (e) => {
    $('coin').textContent = e.data;
    counted(e);
  });
  randomSource.addEventListener('dieRoll', (e) => {
    const n = Number(e.data);
    $('die').textContent = `${DIE_FACES[n - 1] ?? '?'} ${n}`;
    counted(e);
  });
  randomSource.addEventListener('catFact', (e) => {
    $('cat').textContent = e.data;
    counted(e);
  });
  randomSource.addEventListener('meme', (e) => {
    // Only the server's own images: a path under /memes/.
    if (/^\/memes\/[\w-]+\.svg$/.test(e.data)) {
      $('meme').src = e.data;
      $('meme').alt = `Meme ${e.data}`;
      // Shown only once it has an image: an <img> without one is drawn as a broken image.
      $('meme').hidden = false;
      $('meme-none').hidden = true;
    }
    counted(e);
  });
  // The agreed end of stream: event "end" with id -1 (as in the seed article), then the server closes.
  randomSource.addEventListener('end', (e) => {
    log('end', `${e.data} (id ${e.lastEventId})`);
    randomEnded(`ended: ${e.data}`);
  });
  randomSource.addEventListener('open', () => {
    if (randomSource) $('random-state').textContent = 'running';
  });
  randomSource.addEventListener('error', () => {
    if (!randomSource) return;
    // EventSource retries by itself while the server is down (CONNECTING), and gives up (CLOSED)
    // on an answer that is not a stream, such as a 429.
    if (randomSource.readyState === EventSource.CLOSED) randomEnded('connection failed');
    else $('random-state').textContent = 'retrying: the server cannot be reached';
  });
});

$('random-stop').addEventListener('click', () => randomEnded('stopped here (EventSource.close())'));

$('random-stop-server').addEventListener('click', async () => {
  if (!randomStream) return;
  $('random-stop-server').disabled = true;
  await fetch(`/random-events/${encodeURIComponent(randomStream)}/stop`, { method: 'POST' });
});

// ---------- token streaming: /ai/stream ----------
let aiStop;

function aiBegin(how) {
  $('ai-output').textContent = '';
  $('ai-state').textContent = `streaming (${how})…`;
  $('ai-run').disabled = true;
  $('ai-get').disabled = true;
  $('ai-post').disabled = true;
  $('ai-stop').disabled = false;
}

function aiEnd(text) {
  aiStop = undefined;
  $('ai-state').textContent = text;
  $('ai-run').disabled = false;
  $('ai-get').disabled = false;
  $('ai-post').disabled = false;
  $('ai-stop').disabled = true;
}

function aiData(data) {
  if (data === '[DONE]') {
    $('ai-output').append(document.createTextNode(' [DONE]'));
    return true;
  }
  $('ai-output').append(document.createTextNode(parseJson(data).token ?? ''));
  return false;
}

function aiQuery() {
  const query = new URLSearchParams({ prompt: $('ai-prompt').value });
  if (pace) query.set('pace', pace);
  return query;
}

$('ai-get').addEventListener('click', () => {
  aiBegin('EventSource GET');
  const es = new EventSource(`/ai/stream?${aiQuery()}`);
  aiStop = () => {
    es.close();
    aiEnd('stopped');
  };
  es.addEventListener('message', (e) => {
    if (aiData(e.data)) {
      es.close(); // or EventSource would reconnect and ask again
      aiEnd('done');
    }
  });
  es.addEventListener('error', () => {
    es.close();
    aiEnd('connection lost');
  });
});

// The client POSTs a JSON body (EventSource can only GET) and parses the stream itself.
$('ai-post').addEventListener('click', () => {
  aiBegin('client POST');
  const query = pace ? `?pace=${encodeURIComponent(pace)}` : '';
  const client = new HubEventSource(`/ai/stream${query}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ prompt: $('ai-prompt').value }),
  });
  aiStop = () => {
    client.close();
    aiEnd('stopped');
  };
  client.addEventListener('message', (e) => {
    if (aiData(e.data)) {
      client.close(); // or it would reconnect and ask again
      aiEnd('done');
    }
  });
  client.addEventListener('error', (e) => {
    client.close();
    aiEnd(e.status === undefined ? 'ended early' : `failed: HTTP ${e.status}`);
  });
});

$('ai-stop').addEventListener('click', () => aiStop && aiStop());

// ---------- resumable runs: /ai/runs ----------
// The run's id lives in the address (#run=<id>): a reload, or the same address in another tab,
// follows the same run. A new EventSource starts from the beginning of the run, so the whole
// answer so far appears at once, then the rest as it is generated.
const RUN_HASH = /^#run=([A-Za-z0-9_.:~-]{1,128})$/;

function followRun(id) {
  aiBegin(`run ${id.slice(0, 8)}`);
  const es = new EventSource(`/ai/runs/${encodeURIComponent(id)}`);
  let ended = false;
  const finish = (text) => {
    ended = true;
    es.close(); // the server closes after the end; without this EventSource would ask again (and get 204)
    aiEnd(text);
  };
  aiStop = async () => {
    $('ai-stop').disabled = true;
    $('ai-state').textContent = 'stopping…';
    // Every tab following the run gets the end: this one too, through its stream.
    const response = await fetch(`/ai/runs/${encodeURIComponent(id)}/stop`, { method: 'POST' }).catch(() => undefined);
    if (response === undefined || !response.ok) {
      $('ai-state').textContent = `could not stop the run${response ? `: HTTP ${response.status}` : ' (server unreachable)'}`;
      $('ai-stop').disabled = false;
    }
  };
  es.addEventListener('open', () => {
    if (!ended) $('ai-state').textContent = `streaming (run ${id.slice(0, 8)})…`;
  });
  es.addEventListener('token', (e) => {
    $('ai-output').append(document.createTextNode(parseJson(e.data).token ?? ''));
  });
  es.addEventListener('reset', (e) => log('reset', e.data));
  es.addEventListener('message', (e) => {
    if (e.data !== '[DONE]') return;
    $('ai-output').append(document.createTextNode(' [DONE]'));
    finish('done');
  });
  es.addEventListener('end', (e) => {
    const reason = parseJson(e.data).reason ?? 'ended';
    $('ai-output').append(document.createTextNode(` [${reason}]`));
    finish(reason);
  });
  es.addEventListener('error', () => {
    if (ended) return;
    if (es.readyState === EventSource.CLOSED) {
      // A 404 (unknown or expired run) or a 204 (nothing more): EventSource gives up on those.
      finish('the run is gone (it may have expired)');
      history.replaceState(null, '', location.pathname + location.search);
    } else {
      $('ai-state').textContent = 'reconnecting… (the run goes on without us)';
    }
  });
}

$('ai-run').addEventListener('click', async () => {
  aiBegin('starting a run');
  const query = pace ? `?pace=${encodeURIComponent(pace)}` : '';
  let response;
  try {
    response = await fetch(`/ai/runs${query}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ prompt: $('ai-prompt').value }),
    });
  } catch {
    aiEnd('the server is unreachable');
    return;
  }
  const body = await response.json().catch(() => ({}));
  if (response.status !== 201) {
    aiEnd(`could not start: ${body.error ?? `HTTP ${response.status}`}`);
    return;
  }
  history.replaceState(null, '', `${location.pathname}${location.search}#run=${body.id}`);
  followRun(body.id);
});

const runInHash = RUN_HASH.exec(location.hash);
if (runInHash) followRun(runInHash[1]);

// ---------- operations panel: /metrics.json (#16) ----------
const OPS_POLL_MS = 2000;
const OPS_POINTS = 150; // 5 minutes
const opsSeries = { connections: [], events: [], drops: [], rss: [] };
let opsLast;

function opsChart(id, values) {
  const svg = $(id);
  const max = Math.max(1, ...values);
  const step = 300 / (OPS_POINTS - 1);
  const offset = OPS_POINTS - values.length;
  const points = values.map((v, i) => `${((offset + i) * step).toFixed(1)},${(58 - (v / max) * 54).toFixed(1)}`).join(' ');
  let line = svg.querySelector('polyline');
  if (!line) {
    line = document.createElementNS('http://www.w3.org/2000/svg', 'polyline');
    svg.append(line);
  }
  line.setAttribute('points', points);
  svg.setAttribute('data-max', String(max));
}

function opsPush(name, value) {
  const series = opsSeries[name];
  series.push(value);
  if (series.length > OPS_POINTS) series.shift();
}

async function opsPoll() {
  if (document.hidden) return; // a tab nobody looks at does not scrape the server
  let now;
  try {
    const response = await fetch('/metrics.json', { cache: 'no-store' });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    now = await response.json();
  } catch (error) {
    $('ops-state').textContent = `Not updating: ${error.message}; retrying.`;
    return;
  }
  $('ops-state').textContent = '';
  const troubles = (m) => (m.sse_clients_dropped_total ?? 0) + (m.sse_connections_refused_total ?? 0);
  if (opsLast) {
    const seconds = Math.max(0.001, (now.time - opsLast.time) / 1000);
    const events = Math.max(0, now.sse_events_total - opsLast.sse_events_total) / seconds;
    const drops = (Math.max(0, troubles(now) - troubles(opsLast)) / seconds) * 60;
    opsPush('events', events);
    opsPush('drops', drops);
    $('ops-events').textContent = events.toFixed(1);
    $('ops-drops').textContent = drops.toFixed(0);
  }
  opsLast = now;
  opsPush('connections', now.sse_connections);
  opsPush('rss', now.rss / 1048576);
  $('ops-connections').textContent = String(now.sse_connections);
  $('ops-rss').textContent = `${(now.rss / 1048576).toFixed(0)} MB`;
  $('ops-totals').textContent =
    `${now.sse_events_total} events, ${now.sse_deliveries_total} deliveries, ${now.sse_clients_dropped_total} dropped, ` +
    `${now.sse_connections_refused_total} refused, ${now.sse_replays_total} replays, ${now.sse_resets_total} resets, ${now.sse_adapter_errors_total} adapter errors`;
  for (const name of Object.keys(opsSeries)) opsChart(`ops-chart-${name}`, opsSeries[name]);
}

opsPoll();
setInterval(opsPoll, OPS_POLL_MS);

import('/client.js').then(
  (client) => {
    HubEventSource = client.EventSource;
    connect();
  },
  (error) => {
    setState('closed');
    $('client-state').textContent = `Could not load /client.js: ${error.message}`;
  },
);
