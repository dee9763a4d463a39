// chatd web client: plain JS, no dependencies. Talks to the HTTP API (docs/api.md)
// and the WebSocket protocol (docs/protocol.md) of the server that serves it.
'use strict';

const $ = (id) => document.getElementById(id);
const HISTORY_PAGE = 50;

const state = {
  user: null,            // {id, username}
  access: null,          // access token
  refresh: localStorage.getItem('chatd.refresh'),
  refreshTimer: null,
  rooms: new Map(),      // id -> ROOM (with unread, last_seq, read_seq)
  members: new Map(),    // room id -> [{id, username}]
  names: new Map(),      // user id -> username
  messages: new Map(),   // room id -> Map(seq -> MSG)
  lastSeq: new Map(),    // room id -> highest seq seen
  readSeq: new Map(),    // room id -> highest seq known read (the server's marker, own sends, own reads)
  current: null,         // open room id
  loadingOlder: false,
  presence: new Map(),   // user id -> 'online' | 'offline'
  pending: new Map(),    // client_msg_id -> {roomId, el, body}
  ws: null,
  wsBackoff: 500,
  // Rooms a sync cut short (sync.truncated): room id -> the seq to go on after. Asked
  // for again once the running sync is over (the server runs one at a time per
  // connection), and after a reconnect from there rather than from lastSeq, which live
  // messages may have moved past the gap.
  syncGaps: new Map(),
  syncRooms: null,       // rooms of the running sync; null when none runs
  syncCut: new Set(),    // rooms the running sync has cut so far
  typingTimers: new Map(),
  lastTypingSent: 0,
};

// ---------- HTTP ----------
async function api(method, path, body, retried) {
  const headers = { 'Accept': 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (state.access) headers['Authorization'] = 'Bearer ' + state.access;
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (res.status === 401 && !retried && state.refresh && path !== '/v1/auth/refresh') {
    if (await refreshTokens()) return api(method, path, body, true);
  }
  let json = null;
  if (res.status !== 204) { try { json = await res.json(); } catch (_) { json = null; } }
  if (!res.ok) {
    const err = new Error(json && json.error ? json.error.message : 'HTTP ' + res.status);
    err.status = res.status; err.code = json && json.error && json.error.code;
    throw err;
  }
  return json;
}

function takeTokens(t) {
  state.access = t.access_token;
  state.refresh = t.refresh_token;
  localStorage.setItem('chatd.refresh', t.refresh_token);
  if (t.user) { state.user = t.user; state.names.set(t.user.id, t.user.username); }
  clearTimeout(state.refreshTimer);
  const inMs = Math.max(5, (t.expires_in || 900) - 60) * 1000;
  state.refreshTimer = setTimeout(refreshTokens, inMs);
}

let refreshing = null;
function refreshTokens() {
  if (!refreshing) {
    refreshing = (async () => {
      try {
        const res = await fetch('/v1/auth/refresh', { method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ refresh_token: state.refresh }) });
        if (!res.ok) { if (res.status === 401) signedOut(); return false; }
        takeTokens(await res.json());
        wsSend({ type: 'auth', access_token: state.access });
        return true;
      } catch (_) { return false; } finally { setTimeout(() => { refreshing = null; }, 0); }
    })();
  }
  return refreshing;
}

// ---------- auth view ----------
async function authSubmit(register) {
  const username = $('username').value.trim().toLowerCase();
  const password = $('password').value;
  $('auth-error').textContent = '';
  try {
    if (register) await api('POST', '/v1/auth/register', { username, password });
    takeTokens(await api('POST', '/v1/auth/login', { username, password }));
    $('password').value = '';
    await enterChat();
  } catch (e) {
    $('auth-error').textContent = e.message;
  }
}

function signedOut() {
  state.access = null; state.refresh = null; state.user = null;
  localStorage.removeItem('chatd.refresh');
  clearTimeout(state.refreshTimer);
  if (state.ws) { state.ws.onclose = null; state.ws.close(1000); state.ws = null; }
  $('chat-view').hidden = true;
  $('auth-view').hidden = false;
}

async function logout() {
  try { await api('POST', '/v1/auth/logout', { refresh_token: state.refresh }); } catch (_) { /* gone anyway */ }
  signedOut();
}

// ---------- rooms ----------
async function enterChat() {
  if (!state.user) state.user = (await api('GET', '/v1/me')).user;
  state.names.set(state.user.id, state.user.username);
  $('me-name').textContent = state.user.username;
  $('auth-view').hidden = true;
  $('chat-view').hidden = false;
  setupPush();
  await loadRooms();
  connect();
}

async function loadRooms() {
  const { rooms } = await api('GET', '/v1/rooms');
  state.rooms = new Map(rooms.map((r) => [r.id, r]));
  // The list is a snapshot: live messages may already have gone past it. Unread is
  // worked out from seqs, so nothing is counted twice or lost in the overlap.
  for (const r of rooms) {
    if (!state.lastSeq.has(r.id)) state.lastSeq.set(r.id, r.last_seq || 0);
    r.last_seq = Math.max(r.last_seq || 0, state.lastSeq.get(r.id));
    noteRead(r.id, r.read_seq || 0);
    countUnread(r);
  }
  renderRooms();
}

function noteRead(roomId, seq) {
  if (seq > (state.readSeq.get(roomId) || 0)) state.readSeq.set(roomId, seq);
}

function countUnread(r) {
  r.unread = r.id === state.current ? 0 : Math.max(0, (r.last_seq || 0) - (state.readSeq.get(r.id) || 0));
}

function roomLabel(r) {
  if (r.kind === 'direct') {
    const other = (r.members || state.members.get(r.id) || []).find((m) => m.id !== state.user.id);
    if (other) return '@' + other.username;
  }
  return r.name || ('room ' + r.id);
}

function renderRooms() {
  const ul = $('rooms');
  ul.textContent = '';
  const rooms = [...state.rooms.values()].sort((a, b) => (b.last_seq || 0) - (a.last_seq || 0) || b.id - a.id);
  for (const r of rooms) {
    const li = document.createElement('li');
    li.dataset.testid = 'room';
    li.dataset.roomId = r.id;
    if (r.id === state.current) li.classList.add('active');
    const name = document.createElement('span');
    name.className = 'name';
    name.textContent = roomLabel(r);
    li.append(name);
    if (r.unread > 0 && r.id !== state.current) {
      const b = document.createElement('span');
      b.className = 'badge';
      b.dataset.testid = 'unread';
      b.textContent = r.unread;
      li.append(b);
    }
    li.addEventListener('click', () => openRoom(r.id));
    ul.append(li);
  }
}

async function createRoom(ev) {
  ev.preventDefault();
  const name = $('room-name').value.trim();
  if (!name) return;
  const members = $('room-members').value.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
  $('side-error').textContent = '';
  try {
    const { room } = await api('POST', '/v1/rooms', { name, members });
    $('room-name').value = ''; $('room-members').value = '';
    state.rooms.set(room.id, Object.assign({ unread: 0, last_seq: 0, read_seq: 0 }, room));
    renderRooms();
    openRoom(room.id);
  } catch (e) { $('side-error').textContent = e.message; }
}

async function openDm(ev) {
  ev.preventDefault();
  const username = $('dm-user').value.trim().toLowerCase();
  if (!username) return;
  $('side-error').textContent = '';
  try {
    const { room } = await api('POST', '/v1/dm', { username });
    $('dm-user').value = '';
    if (!state.rooms.has(room.id)) state.rooms.set(room.id, Object.assign({ unread: 0, last_seq: 0 }, room));
    renderRooms();
    openRoom(room.id);
  } catch (e) { $('side-error').textContent = e.message; }
}

async function openRoom(id) {
  state.current = id;
  const r = state.rooms.get(id);
  if (r) r.unread = 0;
  renderRooms();
  $('composer').disabled = false; $('send').disabled = false;
  $('messages').textContent = '';
  state.messages.set(id, new Map());
  try {
    const { room } = await api('GET', '/v1/rooms/' + id);
    state.rooms.set(id, Object.assign(state.rooms.get(id) || {}, room));
    state.members.set(id, room.members || []);
    for (const m of room.members || []) state.names.set(m.id, m.username);
    $('room-title').textContent = roomLabel(room);
    renderRooms();
    await loadPresence(room.members || []);
    const { messages } = await api('GET', `/v1/rooms/${id}/messages?limit=${HISTORY_PAGE}`);
    if (state.current !== id) return;
    for (const m of messages) addMessage(m, true);
    scrollToBottom();
    markRead();
  } catch (e) { $('room-title').textContent = e.message; }
}

async function loadOlder() {
  const id = state.current;
  const msgs = state.messages.get(id);
  if (!id || !msgs || state.loadingOlder || msgs.size === 0) return;
  const first = Math.min(...msgs.keys());
  if (first <= 1) return;
  state.loadingOlder = true;
  const list = $('messages');
  const before = list.scrollHeight;
  try {
    const { messages } = await api('GET', `/v1/rooms/${id}/messages?before=${first}&limit=${HISTORY_PAGE}`);
    if (state.current === id) {
      for (const m of messages) addMessage(m, true);
      list.scrollTop = list.scrollHeight - before;
    }
  } finally { state.loadingOlder = false; }
}

// ---------- messages ----------
function messageElement(m, pending) {
  const li = document.createElement('li');
  li.dataset.testid = 'message';
  if (m.seq) li.dataset.seq = m.seq;
  if (m.sender_id === state.user.id || pending) li.classList.add('mine');
  if (pending) li.classList.add('pending');
  const meta = document.createElement('span');
  meta.className = 'meta';
  meta.textContent = (m.sender || state.user.username) + (m.created_at ? ' · ' + new Date(m.created_at).toLocaleTimeString() : '');
  const body = document.createElement('span');
  body.className = 'body';
  body.textContent = m.body;
  li.append(meta, body);
  return li;
}

// Inserts a message of the open room at its seq position; counts it unread elsewhere.
function addMessage(m, fromHistory) {
  const seen = state.lastSeq.get(m.room_id) || 0;
  if (m.seq > seen) state.lastSeq.set(m.room_id, m.seq);
  if (m.sender_id === state.user.id) noteRead(m.room_id, m.seq);   // one's own are never unread
  const r = state.rooms.get(m.room_id);
  if (!r) { loadRooms(); return; }
  if (m.seq > (r.last_seq || 0)) r.last_seq = m.seq;
  if (m.room_id !== state.current) {
    if (m.seq > seen) { countUnread(r); renderRooms(); }
    return;
  }
  if (!fromHistory && state.typingTimers.has(m.sender_id)) {   // the message ends the typing
    clearTimeout(state.typingTimers.get(m.sender_id));
    state.typingTimers.delete(m.sender_id);
    renderTyping();
  }
  const msgs = state.messages.get(m.room_id);
  if (msgs.has(m.seq)) return;
  msgs.set(m.seq, m);
  const list = $('messages');
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  const el = messageElement(m, false);
  const next = [...list.children].find((c) => c.dataset.seq && Number(c.dataset.seq) > m.seq);
  if (next) list.insertBefore(el, next);
  else {
    const firstPending = list.querySelector('li.pending');
    list.insertBefore(el, firstPending);
  }
  if (!fromHistory && atBottom) scrollToBottom();
  if (!fromHistory) markRead();
}

function scrollToBottom() { const l = $('messages'); l.scrollTop = l.scrollHeight; }

function newClientMsgId() {
  const a = new Uint8Array(12);
  crypto.getRandomValues(a);
  return [...a].map((b) => b.toString(16).padStart(2, '0')).join('');
}

async function send(ev) {
  ev.preventDefault();
  const body = $('composer').value;
  const roomId = state.current;
  if (!body.trim() || !roomId) return;
  $('composer').value = '';
  const client_msg_id = newClientMsgId();
  const el = messageElement({ body, sender: state.user.username }, true);
  $('messages').append(el);
  scrollToBottom();
  state.pending.set(client_msg_id, { roomId, el, body });
  if (!wsSend({ type: 'send', room_id: roomId, body, client_msg_id })) {
    try {
      const { message } = await api('POST', `/v1/rooms/${roomId}/messages`, { body, client_msg_id });
      acked(client_msg_id, message);
    } catch (e) { failed(client_msg_id, e.message); }
  }
}

function acked(cid, message) {
  const p = state.pending.get(cid);
  if (!p) return;
  state.pending.delete(cid);
  p.el.remove();
  addMessage(message, false);
}

function failed(cid, reason) {
  const p = state.pending.get(cid);
  if (!p) return;
  p.el.classList.remove('pending');
  p.el.classList.add('failed');
  p.el.title = reason;
}

function markRead() {
  const id = state.current;
  if (!id || document.hidden) return;
  const seq = state.lastSeq.get(id) || 0;
  const r = state.rooms.get(id);
  if (!seq || (r && r.read_seq >= seq)) return;
  if (r) r.read_seq = seq;
  noteRead(id, seq);
  if (!wsSend({ type: 'read', room_id: id, seq })) {
    api('POST', `/v1/rooms/${id}/read`, { seq }).catch(() => {});
  }
}

function showReadMarker(f) {
  if (f.room_id !== state.current || f.user_id === state.user.id) return;
  const who = state.names.get(f.user_id) || ('user ' + f.user_id);
  for (const old of $('messages').querySelectorAll(`.read-marker[data-user="${f.user_id}"]`)) old.remove();
  const el = $('messages').querySelector(`li[data-seq="${f.seq}"]`);
  if (!el) return;
  const mark = document.createElement('span');
  mark.className = 'read-marker';
  mark.dataset.user = f.user_id;
  mark.textContent = 'seen by ' + who;
  el.append(mark);
}

// ---------- typing ----------
function onComposerInput() {
  const now = Date.now();
  if (state.current && now - state.lastTypingSent > 2000) {
    state.lastTypingSent = now;
    wsSend({ type: 'typing', room_id: state.current });
  }
}

function showTyping(f) {
  if (f.room_id !== state.current || f.user_id === state.user.id) return;
  clearTimeout(state.typingTimers.get(f.user_id));
  state.typingTimers.set(f.user_id, setTimeout(() => { state.typingTimers.delete(f.user_id); renderTyping(); }, 3000));
  renderTyping();
}

function renderTyping() {
  const names = [...state.typingTimers.keys()].map((id) => state.names.get(id) || ('user ' + id));
  $('typing').textContent = names.length ? names.join(', ') + (names.length > 1 ? ' are' : ' is') + ' typing…' : '';
}

// ---------- presence ----------
async function loadPresence(members) {
  const ids = members.map((m) => m.id).filter((id) => id !== state.user.id);
  if (ids.length) {
    try {
      const { presence } = await api('GET', '/v1/presence?user_ids=' + ids.join(','));
      for (const p of presence) state.presence.set(p.user_id, p.status);
    } catch (_) { /* dots stay grey */ }
  }
  renderMembers();
}

function renderMembers() {
  const box = $('room-members-list');
  box.textContent = '';
  for (const m of state.members.get(state.current) || []) {
    const s = document.createElement('span');
    const dot = document.createElement('i');
    const online = m.id === state.user.id ? (state.ws && state.ws.readyState === 1) : state.presence.get(m.id) === 'online';
    dot.className = 'dot' + (online ? ' online' : '');
    dot.dataset.testid = 'presence';
    dot.dataset.status = online ? 'online' : 'offline';
    dot.dataset.userId = m.id;
    s.append(dot, document.createTextNode(m.username));
    box.append(s);
  }
}

// ---------- WebSocket ----------
function wsSend(frame) {
  if (!state.ws || state.ws.readyState !== WebSocket.OPEN || !state.wsReady) return false;
  state.ws.send(JSON.stringify(frame));
  return true;
}

function connect() {
  if (!state.access) return;
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const ws = new WebSocket(`${proto}//${location.host}/v1/ws?access_token=${encodeURIComponent(state.access)}`, 'chatd.v1');
  state.ws = ws;
  state.wsReady = false;
  $('conn-state').textContent = 'connecting…';
  ws.onmessage = (ev) => { let f; try { f = JSON.parse(ev.data); } catch (_) { return; } onFrame(f); };
  ws.onclose = (ev) => {
    if (state.ws !== ws) return;
    state.wsReady = false;
    $('conn-state').textContent = 'offline, reconnecting…';
    renderMembers();
    const delay = state.wsBackoff;
    state.wsBackoff = Math.min(state.wsBackoff * 2, 10000);
    setTimeout(async () => {
      if (ev.code === 4001 || ev.code === 1008) await refreshTokens();
      else if (state.refresh) await refreshTokens();
      if (state.ws === ws) connect();
    }, delay);
  };
}

function onFrame(f) {
  switch (f.type) {
    case 'hello': onHello(f); break;
    case 'message': addMessage(f.message, false); break;
    case 'ack': acked(f.client_msg_id, f.message); break;
    case 'typing': showTyping(f); break;
    case 'read': showReadMarker(f); break;
    case 'presence':
      state.presence.set(f.user_id, f.status);
      renderMembers();
      break;
    case 'room': loadRooms(); if (f.room && f.room.id === state.current && f.event === 'left' && f.user_id === state.user.id) state.current = null; break;
    case 'sync.truncated': state.syncGaps.set(f.room_id, f.next_seq - 1); state.syncCut.add(f.room_id); break;
    case 'synced': onSynced(); break;
    case 'error': if (f.client_msg_id) failed(f.client_msg_id, f.message); break;
    default: break;
  }
}

function startSync(rooms) {
  state.syncRooms = Object.keys(rooms).map(Number);
  state.syncCut = new Set();
  wsSend({ type: 'sync', rooms });
}

// The sync is over: the rooms it replayed to their end have no gap left; those it cut
// go on in the next one.
function onSynced() {
  for (const id of state.syncRooms || []) if (!state.syncCut.has(id)) state.syncGaps.delete(id);
  state.syncRooms = null;
  if (state.syncGaps.size) startSync(Object.fromEntries(state.syncGaps));
}

async function onHello(f) {
  state.wsReady = true;
  state.wsBackoff = 500;
  $('conn-state').textContent = 'connected';
  // Fill every gap since what we saw last; then resend what never got an ack.
  const rooms = {};
  for (const [id, seq] of state.lastSeq) rooms[id] = state.syncGaps.has(id) ? state.syncGaps.get(id) : seq;
  startSync(rooms);
  for (const [cid, p] of state.pending) wsSend({ type: 'send', room_id: p.roomId, body: p.body, client_msg_id: cid });
  renderMembers();
  try { await loadRooms(); } catch (_) { /* next hello retries */ }
  if (state.current) loadPresence(state.members.get(state.current) || []);
}

// ---------- push notifications ----------
function setupPush() {
  if (!('serviceWorker' in navigator) || !('PushManager' in window)) return;
  $('push-toggle').hidden = false;
}

function b64urlToBytes(s) {
  const b = atob(s.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((s.length + 3) % 4));
  return Uint8Array.from(b, (c) => c.charCodeAt(0));
}

async function enablePush() {
  try {
    if (await Notification.requestPermission() !== 'granted') return;
    const reg = await navigator.serviceWorker.register('/sw.js');
    const { key } = await api('GET', '/v1/push/vapid-public-key');
    const sub = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: b64urlToBytes(key) });
    const j = sub.toJSON();
    await api('POST', '/v1/push/subscriptions', { endpoint: j.endpoint, keys: j.keys });
    $('push-toggle').textContent = 'Notifications on';
    $('push-toggle').disabled = true;
  } catch (e) { $('push-toggle').textContent = 'Notifications unavailable'; }
}

// ---------- start ----------
function bind() {
  $('auth-form').addEventListener('submit', (e) => { e.preventDefault(); authSubmit(false); });
  $('register').addEventListener('click', () => authSubmit(true));
  $('logout').addEventListener('click', logout);
  $('new-room-form').addEventListener('submit', createRoom);
  $('dm-form').addEventListener('submit', openDm);
  $('composer-form').addEventListener('submit', send);
  $('composer').addEventListener('input', onComposerInput);
  $('composer').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); $('composer-form').requestSubmit(); }
  });
  $('messages').addEventListener('scroll', () => { if ($('messages').scrollTop < 30) loadOlder(); });
  $('push-toggle').addEventListener('click', enablePush);
  document.addEventListener('visibilitychange', markRead);
}

async function start() {
  bind();
  if (state.refresh && await refreshTokens()) {
    try { await enterChat(); return; } catch (_) { /* fall through to the login form */ }
  }
  $('auth-view').hidden = false;
}

start();
