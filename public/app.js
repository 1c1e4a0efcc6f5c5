// The demo page: plain JavaScript, no build step. Every value from the server is shown with
// textContent (never innerHTML), so a payload such as <img onerror=…> stays text.
'use strict';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const channels = params.get('channels') || 'news,sport,clock';
const pace = params.get('pace'); // tests make the random and token streams fast with ?pace=5

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

// ---------- the main stream: /subscribe ----------
let source;
function setState(state) {
  $('state').textContent = state;
  $('state').dataset.state = state;
}

function track(event) {
  if (event.lastEventId) $('last-id').textContent = event.lastEventId;
}

function connect() {
  setState('connecting');
  $('channels').textContent = channels;
  source = new EventSource(`/subscribe?channels=${encodeURIComponent(channels)}`);
  source.addEventListener('open', () => setState('open'));
  source.addEventListener('error', () => setState(source.readyState === EventSource.CLOSED ? 'closed' : 'reconnecting'));

  source.addEventListener('connected', (e) => {
    track(e);
    log('connected', e.data);
  });
  source.addEventListener('current-date', (e) => {
    $('clock').textContent = new Date(e.data).toLocaleString();
    log('current-date', e.data);
  });
  source.addEventListener('presence', (e) => {
    const { count } = parseJson(e.data);
    $('presence').textContent = String(count);
    log('presence', e.data);
  });
  // Broadcasts from POST /generateEvent: unnamed (message) or one of the form's names.
  for (const name of ['message', 'news', 'alert']) {
    source.addEventListener(name, (e) => {
      track(e);
      addMessage(show(parseJson(e.data)));
      log(name, e.data);
    });
  }
  source.addEventListener('catFact', (e) => {
    track(e);
    $('cat').textContent = e.data;
    addMessage(`🐱 ${e.data}`);
    log('catFact', e.data);
  });
  // History could not be replayed exactly (id unknown or too old): what follows is what remains.
  source.addEventListener('reset', (e) => log('reset', e.data));
  source.addEventListener('shutdown', (e) => log('shutdown', e.data));
}

$('toggle-stream').addEventListener('click', () => {
  if (source && source.readyState !== EventSource.CLOSED) {
    source.close();
    setState('closed');
    $('toggle-stream').textContent = 'Connect';
  } else {
    connect();
    $('toggle-stream').textContent = 'Disconnect';
  }
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
  const response = await fetch('/generateEvent');
  const result = await response.json();
  $('broadcast-result').textContent = `Cat fact delivered to ${result.delivered} connection(s), id ${result.id}.`;
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
    }
    counted(e);
  });
  // The agreed end of stream: event "end" with id -1 (as in the seed article), then the server closes.
  randomSource.addEventListener('end', (e) => {
    log('end', `${e.data} (id ${e.lastEventId})`);
    randomEnded(`ended: ${e.data}`);
  });
  randomSource.addEventListener('error', () => {
    if (randomSource && randomSource.readyState === EventSource.CLOSED) randomEnded('connection failed');
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

// A small text/event-stream parser for fetch(): lines end at CRLF, LF or CR; "data" lines join
// with LF; a blank line dispatches. EventSource does this itself, fetch() leaves it to us.
function sseParser(onEvent) {
  let buffer = '';
  let data = [];
  let name = '';
  let id = '';
  function line(text) {
    if (text === '') {
      if (data.length > 0) onEvent({ type: name || 'message', data: data.join('\n'), lastEventId: id });
      data = [];
      name = '';
      return;
    }
    if (text.startsWith(':')) return;
    const colon = text.indexOf(':');
    const field = colon === -1 ? text : text.slice(0, colon);
    let value = colon === -1 ? '' : text.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') data.push(value);
    else if (field === 'event') name = value;
    else if (field === 'id' && !value.includes('\0')) id = value;
  }
  return (chunk) => {
    buffer += chunk;
    let start = 0;
    for (let i = 0; i < buffer.length; i += 1) {
      const c = buffer[i];
      if (c !== '\n' && c !== '\r') continue;
      if (c === '\r' && i === buffer.length - 1) break; // a "\n" may follow in the next chunk
      line(buffer.slice(start, i));
      if (c === '\r' && buffer[i + 1] === '\n') i += 1;
      start = i + 1;
    }
    buffer = buffer.slice(start);
  };
}

function aiBegin(how) {
  $('ai-output').textContent = '';
  $('ai-state').textContent = `streaming (${how})…`;
  $('ai-get').disabled = true;
  $('ai-post').disabled = true;
  $('ai-stop').disabled = false;
}

function aiEnd(text) {
  aiStop = undefined;
  $('ai-state').textContent = text;
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

$('ai-post').addEventListener('click', async () => {
  aiBegin('fetch POST');
  const controller = new AbortController();
  aiStop = () => {
    controller.abort();
    aiEnd('stopped');
  };
  try {
    const query = pace ? `?pace=${encodeURIComponent(pace)}` : '';
    const response = await fetch(`/ai/stream${query}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'text/event-stream' },
      body: JSON.stringify({ prompt: $('ai-prompt').value }),
      signal: controller.signal,
    });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    let done = false;
    const feed = sseParser((event) => {
      if (event.type === 'message' && aiData(event.data)) done = true;
    });
    const decoder = new TextDecoder();
    const reader = response.body.getReader();
    for (;;) {
      const { value, done: ended } = await reader.read();
      if (ended) break;
      feed(decoder.decode(value, { stream: true }));
    }
    aiEnd(done ? 'done' : 'ended early');
  } catch (error) {
    if (error.name !== 'AbortError') aiEnd(`failed: ${error.message}`);
  }
});

$('ai-stop').addEventListener('click', () => aiStop && aiStop());

connect();
