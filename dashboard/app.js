// hl7c dashboard: plain JavaScript, no build step, no dependencies, nothing fetched from outside.
// It reads the admin API of the server that served it (see ADMIN-API in the README) and never
// writes message content into the page as HTML: every value goes in as text.
'use strict';

(() => {
  const params = new URLSearchParams(location.search);
  /** Milliseconds between refreshes (?refresh=ms for tests; 5 s by default). */
  const REFRESH_MS = Math.max(250, Number(params.get('refresh')) || 5000);
  const TOKEN_KEY = 'hl7c-admin-token';
  const $ = (id) => document.getElementById(id);

  let role = null;
  let timer = null;
  let busy = false;

  /** An element with attributes and children (strings become text nodes, never HTML). */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') node.className = v;
      else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat()) {
      if (c === undefined || c === null || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  class Unauthorized extends Error {}
  class Forbidden extends Error {}

  async function api(path, options = {}) {
    const token = sessionStorage.getItem(TOKEN_KEY);
    const headers = { accept: 'application/json', ...(options.body ? { 'content-type': 'application/json' } : {}) };
    if (token) headers.authorization = `Bearer ${token}`;
    const response = await fetch(path, { method: options.method || 'GET', headers, body: options.body ? JSON.stringify(options.body) : undefined, cache: 'no-store' });
    let data = null;
    try {
      data = await response.json();
    } catch {
      data = null;
    }
    if (response.status === 401) throw new Unauthorized((data && data.error) || 'a token is needed');
    if (response.status === 403) throw new Forbidden((data && data.error) || 'your role does not allow this');
    if (!response.ok) {
      const error = new Error((data && (data.error || data.reason)) || `HTTP ${response.status}`);
      error.status = response.status;
      throw error;
    }
    return data;
  }

  // ---- formatting ------------------------------------------------------------------------

  function age(seconds) {
    if (seconds === null || seconds === undefined) return '—';
    const s = Math.max(0, Math.round(seconds));
    if (s < 60) return `${s}s`;
    if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
    if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
    return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
  }

  function since(iso) {
    if (!iso) return '—';
    return `${age((Date.now() - Date.parse(iso)) / 1000)} ago`;
  }

  function time(iso) {
    if (!iso) return '—';
    const d = new Date(iso);
    const today = new Date().toDateString() === d.toDateString();
    return today ? d.toLocaleTimeString() : d.toLocaleString();
  }

  const pill = (text) => el('span', { class: `pill ${String(text).replace(/[^a-z_]/gi, '')}` }, text);

  /** Messages received per minute over the last hour, as a small line. */
  function sparkline(values) {
    const ns = 'http://www.w3.org/2000/svg';
    const w = 120;
    const h = 24;
    const svg = document.createElementNS(ns, 'svg');
    svg.setAttribute('class', 'spark');
    svg.setAttribute('width', w);
    svg.setAttribute('height', h);
    svg.setAttribute('viewBox', `0 0 ${w} ${h}`);
    const list = Array.isArray(values) && values.length ? values : [0];
    const max = Math.max(1, ...list);
    const total = list.reduce((a, b) => a + b, 0);
    const title = document.createElementNS(ns, 'title');
    title.textContent = `${total} in the last ${list.length} minutes; at most ${max} a minute`;
    svg.append(title);
    const bg = document.createElementNS(ns, 'rect');
    bg.setAttribute('width', w);
    bg.setAttribute('height', h);
    svg.append(bg);
    const line = document.createElementNS(ns, 'polyline');
    const step = list.length > 1 ? w / (list.length - 1) : w;
    line.setAttribute('points', list.map((v, i) => `${(i * step).toFixed(1)},${(h - 2 - (v / max) * (h - 4)).toFixed(1)}`).join(' '));
    svg.append(line);
    return svg;
  }

  function countCell(n, bad) {
    return el('td', { class: `num${bad && n > 0 ? ' count-bad' : ''}` }, n ?? 0);
  }

  function replaceRows(table, rows, empty, columns) {
    const body = $(table).tBodies[0];
    body.replaceChildren(...(rows.length ? rows : [el('tr', {}, el('td', { colspan: columns, class: 'muted' }, empty))]));
  }

  function showNotice(text, isError = true) {
    const n = $('notice');
    n.textContent = text;
    n.className = isError ? 'error' : 'muted';
    n.hidden = !text;
  }

  // ---- sections ----------------------------------------------------------------------------

  function renderChannels(channels) {
    replaceRows(
      'channels',
      channels.map((c) => {
        const counts = c.counts || {};
        const source = c.source || {};
        return el(
          'tr',
          { 'data-channel': c.name },
          el('td', {}, el('strong', {}, c.name)),
          el('td', {}, pill(c.state)),
          el('td', {}, `${source.kind || '?'}${source.port ? `:${source.port}` : ''} `, source.listening === false ? pill('stopped') : ''),
          countCell(counts.received),
          countCell(counts.accepted),
          countCell(counts.filtered),
          countCell(counts.rejected, true),
          countCell(counts.error, true),
          countCell(counts.duplicate),
          el('td', { title: c.last_message_at || '' }, since(c.last_message_at)),
          el('td', {}, sparkline(c.per_minute)),
        );
      }),
      'no channels',
      11,
    );
  }

  function renderQueues(destinations) {
    replaceRows(
      'queues',
      destinations.map((d) => {
        const path = `/api/destinations/${encodeURIComponent(d.channel)}/${encodeURIComponent(d.destination)}/${d.paused ? 'resume' : 'pause'}`;
        return el(
          'tr',
          { 'data-queue': `${d.channel}/${d.destination}` },
          el('td', {}, `${d.channel} → `, el('strong', {}, d.destination)),
          el('td', {}, d.kind || ''),
          el('td', {}, pill(d.state), d.paused && d.paused_by ? el('div', { class: 'small', 'data-paused-by': d.paused_by }, `by ${d.paused_by} ${since(d.paused_at)}`) : ''),
          el('td', { class: 'num' }, d.depth ?? 0),
          countCell(d.dead, true),
          el('td', {}, age(d.oldest_age_seconds)),
          el('td', { class: 'small' }, d.last_error ? `${d.last_error}${d.last_error_at ? ` (${since(d.last_error_at)})` : ''}` : '—'),
          el('td', { class: 'actions' }, actionButton(d.paused ? 'Resume' : 'Pause', d.paused ? 'resume' : 'pause', path, {}, `${d.paused ? 'resumed' : 'paused'} ${d.channel} → ${d.destination}`)),
        );
      }),
      'no destination queues',
      8,
    );
  }

  /** A button for an action; a viewer sees it disabled (the API refuses it too). */
  function actionButton(label, action, path, body, done) {
    const operator = role === 'operator';
    return el(
      'button',
      {
        type: 'button',
        'data-action': action,
        disabled: !operator,
        title: operator ? undefined : 'the operator role is needed',
        onclick: async (event) => {
          const button = event.currentTarget;
          button.disabled = true;
          try {
            await api(path, { method: 'POST', body });
            showNotice(done, false);
          } catch (err) {
            if (err instanceof Unauthorized) return askForToken(err.message);
            showNotice(`${label} failed: ${err.message}`);
          }
          await refresh();
        },
      },
      label,
    );
  }

  function deliveriesCell(m) {
    return el('td', { class: 'small' }, ...(m.deliveries || []).map((d) => el('div', {}, `${d.destination} `, pill(d.state))));
  }

  function messageRow(m, withActions) {
    const cells = [
      el('td', { class: 'num' }, el('a', { onclick: () => openMessage(m), 'data-open': m.id }, m.id)),
      el('td', { title: m.received_at }, time(m.received_at)),
      el('td', {}, m.channel),
      el('td', {}, m.type || '—'),
      el('td', {}, m.control_id || '—'),
      el('td', {}, pill(m.status)),
      el('td', { class: 'small reason' }, m.reason || ''),
      deliveriesCell(m),
    ];
    if (withActions) {
      const buttons = [];
      const broken = (m.deliveries || []).filter((d) => d.state === 'dead' || d.state === 'stopped');
      if (broken.length === 0) buttons.push(actionButton('Replay', 'replay', `/api/messages/${m.id}/replay`, {}, `message ${m.id} replayed`));
      for (const d of broken) {
        buttons.push(actionButton(`Replay → ${d.destination}`, 'replay', `/api/messages/${m.id}/replay`, { destination: d.destination }, `message ${m.id} replayed to ${d.destination}`));
        buttons.push(actionButton(`Discard → ${d.destination}`, 'discard', `/api/messages/${m.id}/discard`, { destination: d.destination }, `message ${m.id}: entry for ${d.destination} discarded`));
      }
      cells.push(el('td', { class: 'actions' }, ...buttons));
    }
    return el('tr', { 'data-message-id': m.id, 'data-status': m.status }, ...cells);
  }

  function renderAlerts(alerts) {
    const section = $('alerts-section');
    if (!alerts || !alerts.rules || alerts.rules.length === 0) {
      section.hidden = true;
      return;
    }
    section.hidden = false;
    const items = [];
    for (const rule of alerts.rules) {
      if (rule.state !== 'firing') continue;
      const subjects = rule.firing && rule.firing.length ? rule.firing : [{ summary: rule.name, since: rule.since }];
      for (const s of subjects) items.push(el('li', { 'data-rule': rule.name }, pill('firing'), ' ', el('strong', {}, rule.name), ` ${s.summary} `, el('span', { class: 'muted small' }, `since ${since(s.since)}`)));
    }
    if (items.length === 0) items.push(el('li', { class: 'muted' }, `${alerts.rules.length} rule(s), none firing`));
    for (const r of (alerts.recent || []).slice(0, 5)) {
      items.push(el('li', { class: 'small muted' }, `${time(r.at)} `, pill(r.state), ` ${r.rule}: ${r.summary}`));
    }
    $('alerts').replaceChildren(...items);
  }

  // ---- message view ------------------------------------------------------------------------

  /** Which occurrence of its name a segment is (1 for the first PID). */
  function occurrence(segments, i) {
    let n = 0;
    for (let j = 0; j <= i; j++) if (segments[j].name === segments[i].name) n++;
    return n;
  }

  const MASK = '•••••• (hidden: your role does not allow patient data)';

  async function openMessage(row) {
    const panel = $('detail');
    const body = $('detail-body');
    $('detail-title').textContent = `Message ${row.id}`;
    panel.hidden = false;
    body.replaceChildren(el('p', { class: 'muted' }, 'loading…'));
    const summary = (m) =>
      el(
        'table',
        {},
        el('tbody', {}, ...[
          ['channel', m.channel],
          ['received', time(m.received_at)],
          ['type', m.type || '—'],
          ['control id', m.control_id || '—'],
          ['status', pill(m.status)],
          ['reason', m.reason || '—'],
        ].map(([k, v]) => el('tr', {}, el('th', {}, k), el('td', {}, v)))),
      );
    try {
      const d = await api(`/api/messages/${row.id}`);
      body.replaceChildren(
        summary(d.message),
        el('h3', {}, d.field_names_version ? `Segments (field names of HL7 v${d.field_names_version})` : 'Segments'),
        ...(d.segments || []).map((s, i, all) =>
          el(
            'details',
            { class: 'segment', open: s.name === 'MSH' || s.name === 'PID' || undefined },
            // OBX [3]: the third OBX, numbered as HL7 paths number repeated segments.
            el('summary', {}, occurrence(all, i) > 1 ? `${s.name} [${occurrence(all, i)}]` : s.name),
            el('table', {}, el('tbody', {}, ...(s.fields || []).map((f) => el('tr', {}, el('td', {}, f.position), el('td', { class: 'muted' }, f.name || ''), el('td', {}, f.value ?? ''))))),
          ),
        ),
        el('h3', {}, 'ACK sent'),
        el('pre', {}, d.ack ? d.ack.replace(/\r/g, '\n') : '— none'),
        el('h3', {}, 'Mapped output'),
        el('pre', {}, d.output === null || d.output === undefined ? '—' : typeof d.output === 'string' ? d.output.replace(/\r/g, '\n') : JSON.stringify(d.output, null, 2)),
        el('h3', {}, 'Deliveries'),
        ...(d.deliveries || []).map((dl) =>
          el(
            'div',
            { class: 'delivery' },
            el('p', {}, el('strong', {}, dl.destination), ' ', pill(dl.state)),
            el('table', {}, el('tbody', {}, ...(dl.attempts || []).map((a) => el('tr', {}, el('td', {}, time(a.at)), el('td', {}, pill(a.outcome)), el('td', { class: 'small' }, a.answer || ''))))),
          ),
        ),
        el('h3', {}, 'Raw'),
        el('pre', {}, (d.raw || '').replace(/\r/g, '\n')),
      );
    } catch (err) {
      if (err instanceof Unauthorized) return askForToken(err.message);
      if (err instanceof Forbidden) {
        // A viewer: what the list showed, and placeholders where patient data would be.
        body.replaceChildren(
          summary(row),
          // (No detail was read: the version whose field names it would use is not known here.)
          el('h3', {}, 'Segments'),
          el('p', { class: 'masked', 'data-masked': 'segments' }, MASK),
          el('h3', {}, 'ACK sent'),
          el('p', { class: 'masked' }, MASK),
          el('h3', {}, 'Mapped output'),
          el('p', { class: 'masked' }, MASK),
          el('h3', {}, 'Deliveries'),
          ...(row.deliveries || []).map((dl) => el('p', {}, el('strong', {}, dl.destination), ' ', pill(dl.state))),
        );
        return;
      }
      body.replaceChildren(el('p', { class: 'error' }, `could not load the message: ${err.message}`));
    }
  }

  // ---- refresh loop --------------------------------------------------------------------------

  async function optional(path) {
    try {
      return await api(path);
    } catch (err) {
      if (err instanceof Unauthorized) throw err;
      return null;
    }
  }

  async function refresh() {
    if (busy) return;
    busy = true;
    try {
      if (!role) {
        const who = await api('/api/whoami');
        role = who.role;
        $('who').textContent = `${who.name} (${who.role})`;
        $('sign-out').hidden = !sessionStorage.getItem(TOKEN_KEY);
      }
      const [channels, destinations, errors, latest, alerts, health] = await Promise.all([
        api('/api/channels'),
        api('/api/destinations'),
        api('/api/messages?status=error_queue&limit=50'),
        api('/api/messages?limit=20'),
        optional('/api/alerts'),
        fetch('/health', { cache: 'no-store' }).then((r) => r.json()).catch(() => ({ status: 'unavailable' })),
      ]);
      $('login').hidden = true;
      $('main').hidden = false;
      renderChannels(channels.channels || []);
      renderQueues(destinations.destinations || []);
      replaceRows('errors', (errors.messages || []).map((m) => messageRow(m, true)), 'nothing in the error queue', 9);
      replaceRows('messages', (latest.messages || []).map((m) => messageRow(m, false)), 'no messages yet', 8);
      renderAlerts(alerts);
      const h = $('health');
      h.textContent = `health: ${health.status}`;
      h.className = `pill ${health.status}`;
      h.title = (health.reasons || []).join('\n') || 'GET /health';
      $('updated').textContent = `updated ${new Date().toLocaleTimeString()}`;
      document.body.dataset.loaded = String(Number(document.body.dataset.loaded || 0) + 1);
    } catch (err) {
      if (err instanceof Unauthorized) askForToken(sessionStorage.getItem(TOKEN_KEY) ? 'that token was refused' : '');
      else showNotice(`could not refresh: ${err.message}`);
    } finally {
      busy = false;
    }
  }

  function askForToken(message) {
    role = null;
    $('main').hidden = true;
    $('login').hidden = false;
    $('login-error').textContent = message || '';
    $('token').focus();
  }

  $('login').addEventListener('submit', (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $('token').value.trim());
    $('token').value = '';
    role = null;
    void refresh();
  });
  $('sign-out').addEventListener('click', () => {
    sessionStorage.removeItem(TOKEN_KEY);
    role = null;
    void refresh();
  });
  $('detail-close').addEventListener('click', () => ($('detail').hidden = true));

  void refresh();
  timer = setInterval(() => void refresh(), REFRESH_MS);
  window.addEventListener('beforeunload', () => clearInterval(timer));
})();
