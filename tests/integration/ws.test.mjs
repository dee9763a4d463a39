// ws.test.mjs: the WebSocket protocol through npm `ws` (and raw sockets where a
// well-behaved client cannot misbehave): the handshake, every frame type, fan-out to
// several connections of several users, ordering, dedupe, sync, the close codes of
// each kind of bad frame, and a client that stops reading.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { startServer, api, registerAndLogin, uniqueName, wsConnect, waitFor, registerUsers } from './lib/harness.mjs';

let server, http, alice, bob, carol, mallory;

before(async () => {
    server = await startServer();
    http = api(server);
    [alice, bob, carol, mallory] = await registerUsers(server, ['alice', 'bob', 'carol', 'mallory']);
});

after(async () => {
    if (server && server.exitStatus === null)
        await server.stop();
});

const as = (u) => ({ token: u.access_token });

async function createRoom(owner, members = []) {
    const res = await http.post('/v1/rooms', { name: uniqueName('room'), members: members.map((m) => m.username) },
        as(owner));
    assert.equal(res.status, 201, res.text);
    return res.json.room;
}

async function connect(user, opts) {
    const c = await wsConnect(server, user.access_token, opts);
    await c.next('hello');
    return c;
}

/** Every frame before a pong: ping, then wait, so "nothing else came" is a fact. */
async function settle(conn) {
    conn.send({ type: 'ping' });
    await conn.next('pong');
}

async function metric(srv, name) {
    const res = await api(srv).get('/metrics');
    const line = res.text.split('\n').find((l) => l.startsWith(name + ' ') || l.startsWith(name + '{') && l.split(' ')[0] === name);
    return line ? Number(line.split(' ').pop()) : undefined;
}

// --- raw sockets ------------------------------------------------------------------

/** Upgrades a plain TCP socket; resolves {sock, rest} after the 101. */
function rawUpgrade(srv, token, extraHeaders = '') {
    return new Promise((resolve, reject) => {
        const sock = net.connect(srv.port, srv.host);
        let buf = Buffer.alloc(0);
        const onData = (d) => {
            buf = Buffer.concat([buf, d]);
            const end = buf.indexOf('\r\n\r\n');
            if (end < 0)
                return;
            sock.off('data', onData);
            const head = buf.subarray(0, end).toString();
            if (!head.startsWith('HTTP/1.1 101'))
                return reject(new Error(head));
            resolve({ sock, rest: buf.subarray(end + 4) });
        };
        sock.on('data', onData);
        sock.on('error', reject);
        sock.write(`GET /v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
            `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n` +
            `Authorization: Bearer ${token}\r\n${extraHeaders}\r\n`);
    });
}

/** A client frame; masked unless mask === false. */
function clientFrame(opcode, payload, { mask = true, fin = true } = {}) {
    const data = Buffer.from(payload);
    const len = data.length;
    const head = [((fin ? 0x80 : 0) | opcode)];
    const m = mask ? 0x80 : 0;
    if (len < 126) head.push(m | len);
    else if (len < 65536) head.push(m | 126, len >> 8, len & 255);
    else { head.push(m | 127, 0, 0, 0, 0, (len >>> 24) & 255, (len >> 16) & 255, (len >> 8) & 255, len & 255); }
    const key = Buffer.from([1, 2, 3, 4]);
    const body = Buffer.from(data);
    if (mask)
        for (let i = 0; i < len; i++) body[i] ^= key[i % 4];
    return Buffer.concat([Buffer.from(head), mask ? key : Buffer.alloc(0), body]);
}

/** Parses server frames out of buf: {frames: [{opcode, payload}], rest}. */
function parseFrames(buf) {
    const frames = [];
    let off = 0;
    for (;;) {
        if (buf.length - off < 2) break;
        const b1 = buf[off + 1];
        assert.equal(b1 & 0x80, 0, 'server frames are never masked');
        let len = b1 & 0x7f, h = 2;
        if (len === 126) { if (buf.length - off < 4) break; len = buf.readUInt16BE(off + 2); h = 4; }
        else if (len === 127) { if (buf.length - off < 10) break; len = Number(buf.readBigUInt64BE(off + 2)); h = 10; }
        if (buf.length - off < h + len) break;
        frames.push({ opcode: buf[off] & 0x0f, payload: buf.subarray(off + h, off + h + len) });
        off += h + len;
    }
    return { frames, rest: buf.subarray(off) };
}

/** Reads a raw socket until a close frame arrives (or the socket ends); its code. */
function rawCloseCode(sock, initial = Buffer.alloc(0), timeout = 5000) {
    return new Promise((resolve, reject) => {
        let buf = initial;
        const check = () => {
            const { frames } = parseFrames(buf);
            const close = frames.find((f) => f.opcode === 8);
            if (close) {
                cleanup();
                resolve(close.payload.length >= 2 ? close.payload.readUInt16BE(0) : 1005);
            }
        };
        const onData = (d) => { buf = Buffer.concat([buf, d]); check(); };
        const onEnd = () => { cleanup(); resolve(null); };
        const timer = setTimeout(() => { cleanup(); reject(new Error('no close frame')); }, timeout);
        function cleanup() { clearTimeout(timer); sock.off('data', onData); sock.off('end', onEnd); }
        sock.on('data', onData);
        sock.on('end', onEnd);
        check();
    });
}

// --- handshake --------------------------------------------------------------------

test('a missing or bad token is refused with 401 before any upgrade', async () => {
    await assert.rejects(wsConnect(server, null), (e) => e.status === 401 && e.json?.error?.code === 'unauthorized');
    await assert.rejects(wsConnect(server, 'not.a.token'), (e) => e.status === 401);
    const tampered = alice.access_token.slice(0, -4) + 'AAAA';
    await assert.rejects(wsConnect(server, tampered), (e) => e.status === 401);
});

test('the token may come as ?access_token= (browsers); hello names the user', async () => {
    const c = await wsConnect(server, alice.access_token, { query: true });
    const hello = await c.next('hello');
    assert.equal(hello.user.id, alice.user.id);
    assert.equal(hello.user.username, alice.username);
    assert.equal(typeof hello.heartbeat_ms, 'number');
    assert.ok(Math.abs(hello.server_time - Date.now()) < 60000);
    assert.equal(c.frames[0].type, 'hello', 'hello comes first');
    await c.close();
});

test('the subprotocol chatd.v1 is echoed when offered, and only then', async () => {
    const a = await wsConnect(server, alice.access_token, { protocols: ['other', 'chatd.v1'] });
    assert.equal(a.protocol, 'chatd.v1');
    await a.close();
    const b = await wsConnect(server, alice.access_token);
    assert.equal(b.protocol, '');
    await b.close();
});

test('a bad handshake gets 400', async () => {
    const base = { Upgrade: 'websocket', Connection: 'Upgrade', 'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==' };
    const cases = [
        { ...base, 'Sec-WebSocket-Version': '8' },
        { ...base, 'Sec-WebSocket-Key': 'short' },
        { ...base, Upgrade: 'h2c' },
    ];
    for (const headers of cases) {
        const res = await http.get('/v1/ws', { ...as(alice), headers });
        assert.equal(res.status, 400, JSON.stringify(headers));
        assert.equal(res.json?.error?.code, 'invalid_argument');
    }
    const res = await http.get('/v1/ws', { ...as(alice), headers: { ...base, 'Sec-WebSocket-Version': '8' } });
    assert.equal(res.headers['sec-websocket-version'], '13');
    const plain = await http.get('/v1/ws', as(alice));
    assert.equal(plain.status, 400);
});

// --- fan-out ----------------------------------------------------------------------

test('two users, several connections: ack to the sender, message to every other connection', async () => {
    const room = await createRoom(alice, [bob]);
    const [a1, a2, b1, b2] = await Promise.all([connect(alice), connect(alice), connect(bob), connect(bob)]);
    a1.send({ type: 'send', room_id: room.id, body: 'hello all', client_msg_id: 'fan-1' });
    const ack = await a1.next('ack');
    assert.equal(ack.client_msg_id, 'fan-1');
    assert.equal(ack.message.body, 'hello all');
    assert.equal(ack.message.sender_id, alice.user.id);
    assert.equal(ack.message.seq, 1);
    for (const c of [a2, b1, b2]) {
        const m = await c.next('message');
        assert.deepEqual(m.message, ack.message);
    }
    await settle(a1);
    assert.equal(a1.frames.filter((f) => f.type === 'message').length, 0,
        'the sending connection gets the ack, not the message again');
    await Promise.all([a1, a2, b1, b2].map((c) => c.close()));
});

test('a message posted over HTTP reaches every connection, the sender\'s included', async () => {
    const room = await createRoom(alice, [bob]);
    const [a1, b1] = await Promise.all([connect(alice), connect(bob)]);
    const res = await http.post(`/v1/rooms/${room.id}/messages`, { body: 'via http' }, as(alice));
    assert.equal(res.status, 201);
    for (const c of [a1, b1])
        assert.deepEqual((await c.next('message')).message, res.json.message);
    await Promise.all([a1.close(), b1.close()]);
});

test('1,000 rapid messages arrive in seq order, each once, on every connection', async () => {
    const room = await createRoom(alice, [bob]);
    const [a1, b1, b2] = await Promise.all([connect(alice), connect(bob), connect(bob)]);
    const N = 1000;
    for (let i = 0; i < N; i++)
        a1.send({ type: 'send', room_id: room.id, body: `m${i}`, client_msg_id: `order-${i}` });
    for (const c of [b1, b2]) {
        await waitFor(() => c.frames.filter((f) => f.type === 'message').length >= N,
            { timeout: 60000, message: 'all messages' });
        const msgs = c.frames.filter((f) => f.type === 'message').map((f) => f.message);
        assert.equal(msgs.length, N);
        msgs.forEach((m, i) => assert.equal(m.seq, i + 1));
        // sent from one connection in order: stored in that order
        msgs.forEach((m, i) => assert.equal(m.body, `m${i}`));
    }
    await waitFor(() => a1.frames.filter((f) => f.type === 'ack').length >= N, { timeout: 60000 });
    const acks = a1.frames.filter((f) => f.type === 'ack');
    acks.forEach((a, i) => assert.equal(a.client_msg_id, `order-${i}`));
    await Promise.all([a1.close(), b1.close(), b2.close()]);
});

test('a repeated client_msg_id acks the first message again and stores nothing', async () => {
    const room = await createRoom(alice, [bob]);
    const [a1, b1] = await Promise.all([connect(alice), connect(bob)]);
    a1.send({ type: 'send', room_id: room.id, body: 'once', client_msg_id: 'dup-1' });
    const first = await a1.next('ack');
    a1.send({ type: 'send', room_id: room.id, body: 'once again', client_msg_id: 'dup-1' });
    const second = await a1.next('ack');
    assert.deepEqual(second.message, first.message);
    await b1.next('message');
    await settle(b1);
    assert.equal(b1.frames.filter((f) => f.type === 'message').length, 1, 'delivered once');
    const hist = await http.get(`/v1/rooms/${room.id}/messages`, as(bob));
    assert.equal(hist.json.messages.length, 1);
    await Promise.all([a1.close(), b1.close()]);
});

test('a send to a room the user is not in is refused with an error frame', async () => {
    const room = await createRoom(alice, [bob]);
    const [m1, b1] = await Promise.all([connect(mallory), connect(bob)]);
    m1.send({ type: 'send', room_id: room.id, body: 'let me in', client_msg_id: 'intrude-1' });
    const err = await m1.next('error');
    assert.equal(err.client_msg_id, 'intrude-1');
    assert.ok(['forbidden', 'not_found'].includes(err.code), err.code);
    await settle(b1);
    assert.equal(b1.frames.filter((f) => f.type === 'message').length, 0);
    // the connection stays open
    await settle(m1);
    await Promise.all([m1.close(), b1.close()]);
});

test('typing reaches the other members online, not the typist', async () => {
    const room = await createRoom(alice, [bob]);
    const [a1, a2, b1] = await Promise.all([connect(alice), connect(alice), connect(bob)]);
    a1.send({ type: 'typing', room_id: room.id });
    const t = await b1.next('typing');
    assert.deepEqual(t, { type: 'typing', room_id: room.id, user_id: alice.user.id });
    await settle(a2);
    assert.equal(a2.frames.filter((f) => f.type === 'typing').length, 0);
    await Promise.all([a1.close(), a2.close(), b1.close()]);
});

test('read markers are stored and told to the other members', async () => {
    const room = await createRoom(alice, [bob]);
    const [a1, b1] = await Promise.all([connect(alice), connect(bob)]);
    a1.send({ type: 'send', room_id: room.id, body: 'read me', client_msg_id: 'r1' });
    const ack = await a1.next('ack');
    await b1.next('message');
    b1.send({ type: 'read', room_id: room.id, seq: ack.message.seq });
    const r = await a1.next('read');
    assert.deepEqual(r, { type: 'read', room_id: room.id, user_id: bob.user.id, seq: ack.message.seq });
    const rooms = await http.get('/v1/rooms', as(bob));
    assert.equal(rooms.json.rooms.find((x) => x.id === room.id).read_seq, ack.message.seq);
    await Promise.all([a1.close(), b1.close()]);
});

test('ping gets pong with the server time', async () => {
    const a1 = await connect(alice);
    a1.send({ type: 'ping' });
    const p = await a1.next('pong');
    assert.ok(Math.abs(p.server_time - Date.now()) < 60000);
    await a1.close();
});

test('room joined and left events reach the members', async () => {
    const room = await createRoom(alice, [bob]);
    const [a1, b1, c1] = await Promise.all([connect(alice), connect(bob), connect(carol)]);
    const add = await http.post(`/v1/rooms/${room.id}/members`, { username: carol.username }, as(alice));
    assert.equal(add.status, 204, add.text);
    for (const c of [a1, b1, c1]) {
        const ev = await c.next('room');
        assert.equal(ev.event, 'joined');
        assert.equal(ev.user_id, carol.user.id);
        assert.equal(ev.room.id, room.id);
    }
    const del = await http.del(`/v1/rooms/${room.id}/members/${carol.user.id}`, as(carol));
    assert.equal(del.status, 204, del.text);
    for (const c of [a1, b1, c1]) {
        const ev = await c.next({ type: 'room', event: 'left' });
        assert.equal(ev.user_id, carol.user.id);
    }
    await Promise.all([a1.close(), b1.close(), c1.close()]);
});

// --- sync -------------------------------------------------------------------------

test('sync after a disconnect fills the gap in order, then synced', async () => {
    const room = await createRoom(alice, [bob]);
    const a1 = await connect(alice);
    let b1 = await connect(bob);
    a1.send({ type: 'send', room_id: room.id, body: 'before', client_msg_id: 's0' });
    const seen = (await b1.next('message')).message.seq;
    await b1.close();
    for (let i = 1; i <= 5; i++)
        a1.send({ type: 'send', room_id: room.id, body: `missed ${i}`, client_msg_id: `s${i}` });
    await waitFor(() => a1.frames.filter((f) => f.type === 'ack').length === 6);
    b1 = await connect(bob);
    b1.send({ type: 'sync', rooms: { [room.id]: seen } });
    await b1.next("synced", 60000);
    const msgs = b1.frames.filter((f) => f.type === 'message').map((f) => f.message);
    assert.deepEqual(msgs.map((m) => m.body), [1, 2, 3, 4, 5].map((i) => `missed ${i}`));
    assert.deepEqual(msgs.map((m) => m.seq), [2, 3, 4, 5, 6]);
    await Promise.all([a1.close(), b1.close()]);
});

test('sync of a big gap is cut at 500 with sync.truncated; rooms not joined are left out', async () => {
    const room = await createRoom(alice, [bob]);
    const other = await createRoom(carol, []);
    const a1 = await connect(alice);
    const N = 520;
    for (let i = 0; i < N; i++)
        a1.send({ type: 'send', room_id: room.id, body: `b${i}`, client_msg_id: `big-${i}` });
    await waitFor(() => a1.frames.filter((f) => f.type === 'ack').length === N, { timeout: 60000 });
    const b1 = await connect(bob);
    b1.send({ type: 'sync', rooms: { [room.id]: 0, [other.id]: 0 } });
    await b1.next("synced", 60000);
    const msgs = b1.frames.filter((f) => f.type === 'message').map((f) => f.message);
    assert.equal(msgs.length, 500);
    msgs.forEach((m, i) => { assert.equal(m.seq, i + 1); assert.equal(m.room_id, room.id); });
    const tr = b1.frames.find((f) => f.type === 'sync.truncated');
    assert.deepEqual(tr, { type: 'sync.truncated', room_id: room.id, next_seq: 501 });
    const order = b1.frames.map((f) => f.type).filter((t) => t !== 'hello');
    assert.equal(order.at(-1), 'synced');
    assert.equal(order.at(-2), 'sync.truncated');
    await Promise.all([a1.close(), b1.close()]);
});

test('a sync naming a room twice (a repeated key), or with a key spelt 0N, is refused', async () => {
    const room = await createRoom(alice, [bob]);
    const a1 = await connect(alice);
    for (let i = 1; i <= 3; i++)
        a1.send({ type: 'send', room_id: room.id, body: `twice ${i}`, client_msg_id: `twice-${i}` });
    await waitFor(() => a1.frames.filter((f) => f.type === 'ack').length === 3, { timeout: 30000 });
    const b1 = await connect(bob);
    // JSON.stringify cannot repeat a key: the frame is written by hand. The first key
    // for a room is the one that counts, as for any repeated key in a JSON object.
    b1.send(`{"type":"sync","rooms":{"0${room.id}":0}}`);
    const refused = await b1.next('error', 30000);
    assert.equal(refused.code, 'invalid_argument');
    assert.match(refused.message, /room ids/);
    b1.send(`{"type":"sync","rooms":{"${room.id}":1,"${room.id}":0}}`);
    const repeated = await b1.next('error', 30000);
    assert.equal(repeated.code, 'invalid_argument');
    assert.match(repeated.message, /named twice/);
    b1.send(`{"type":"sync","rooms":{"${room.id}":1}}`);
    await b1.next('synced', 60000);
    const msgs = b1.frames.filter((f) => f.type === 'message').map((f) => f.message);
    assert.deepEqual(msgs.map((m) => m.seq), [2, 3]);
    await Promise.all([a1.close(), b1.close()]);
});

test('live messages arriving during a sync come after it, in order and once', async () => {
    const room = await createRoom(alice, [bob]);
    const a1 = await connect(alice);
    for (let i = 0; i < 200; i++)
        a1.send({ type: 'send', room_id: room.id, body: `x${i}`, client_msg_id: `live-${i}` });
    await waitFor(() => a1.frames.filter((f) => f.type === 'ack').length === 200, { timeout: 60000 });
    const b1 = await connect(bob);
    b1.send({ type: 'sync', rooms: { [room.id]: 0 } });
    // the server has taken the sync before the new sends (frames are handled in order)
    b1.send({ type: 'ping' });
    await b1.next('pong');
    for (let i = 200; i < 300; i++)
        a1.send({ type: 'send', room_id: room.id, body: `x${i}`, client_msg_id: `live-${i}` });
    await waitFor(() => b1.frames.filter((f) => f.type === 'message').length >= 300, { timeout: 60000 });
    await settle(b1);
    const msgs = b1.frames.filter((f) => f.type === 'message').map((f) => f.message);
    assert.equal(msgs.length, 300);
    msgs.forEach((m, i) => assert.equal(m.seq, i + 1));
    assert.ok(b1.frames.some((f) => f.type === 'synced'));
    await Promise.all([a1.close(), b1.close()]);
});

// --- bad input and close codes --------------------------------------------------

test('bad JSON and unknown types get error frames; the connection stays open', async () => {
    const a1 = await connect(alice);
    a1.send('not json');
    assert.equal((await a1.next('error')).code, 'invalid_argument');
    a1.send({ type: 'fly' });
    assert.equal((await a1.next('error')).code, 'invalid_argument');
    a1.send({ type: 'send', room_id: 'x', body: 'b', client_msg_id: 'bad-1' });
    const e = await a1.next('error');
    assert.equal(e.client_msg_id, 'bad-1');
    await settle(a1);
    await a1.close();
});

test('repeated bad frames close with 1008', async () => {
    const a1 = await connect(alice);
    for (let i = 0; i < 10; i++)
        a1.send('{{{');
    const { code } = await a1.closed;
    assert.equal(code, 1008);
    assert.equal(a1.frames.filter((f) => f.type === 'error').length, 10);
});

test('a binary frame closes with 1003', async () => {
    const a1 = await connect(alice);
    a1.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    assert.equal((await a1.closed).code, 1003);
});

test('a text frame that is not UTF-8 closes with 1007', async () => {
    const a1 = await connect(alice);
    a1.ws.send(Buffer.from([0x7b, 0xc3, 0x28, 0x7d]), { binary: false });
    assert.equal((await a1.closed).code, 1007);
});

test('a frame over max_message_bytes closes with 1009', async () => {
    const a1 = await connect(alice);
    a1.send(JSON.stringify({ type: 'ping', pad: 'x'.repeat(70000) }));
    assert.equal((await a1.closed).code, 1009);
});

test('an unmasked client frame closes with 1002', async () => {
    const { sock, rest } = await rawUpgrade(server, alice.access_token);
    sock.write(clientFrame(1, '{"type":"ping"}', { mask: false }));
    assert.equal(await rawCloseCode(sock, rest), 1002);
    sock.destroy();
});

test('fragmented frames with a ping between fragments are one message', async () => {
    const { sock, rest } = await rawUpgrade(server, alice.access_token);
    const text = JSON.stringify({ type: 'ping' });
    let buf = rest;
    sock.on('data', (d) => { buf = Buffer.concat([buf, d]); });
    sock.write(Buffer.concat([
        clientFrame(1, text.slice(0, 5), { fin: false }),
        clientFrame(9, 'hb'),
        clientFrame(0, text.slice(5, 9), { fin: false }),
        clientFrame(0, text.slice(9)),
    ]));
    await waitFor(() => parseFrames(buf).frames.some((f) => f.opcode === 1 && f.payload.toString().includes('pong')));
    const { frames } = parseFrames(buf);
    assert.ok(frames.some((f) => f.opcode === 10 && f.payload.toString() === 'hb'), 'ping answered');
    sock.destroy();
});

test('closes are counted by code in /metrics', async () => {
    const v = await metric(server, 'chatd_ws_closes_total{code="1003"}');
    assert.ok(v >= 1, String(v));
    assert.ok(await metric(server, 'chatd_ws_connections') >= 0);
});

// --- auth on a live connection ---------------------------------------------------

test('auth replaces the token for the same user only', async () => {
    const a1 = await connect(alice);
    const fresh = await http.post('/v1/auth/login', { username: alice.username, password: alice.password });
    a1.send({ type: 'auth', access_token: fresh.json.access_token });
    const ok = await a1.next('auth.ok');
    assert.ok(ok.expires_at > Date.now());
    a1.send({ type: 'auth', access_token: bob.access_token });
    assert.equal((await a1.next('error')).code, 'forbidden');
    a1.send({ type: 'auth', access_token: 'garbage' });
    assert.equal((await a1.next('error')).code, 'unauthorized');
    await settle(a1);
    await a1.close();
});

// --- rate limits -----------------------------------------------------------------

test('sends past the per-user rate get rate_limited error frames; typing excess is dropped', async () => {
    const srv = await startServer({ config: '[limits]\nmessages_per_s = 1\nmessages_burst = 3\ntyping_per_s = 1\n' });
    try {
        const [u, v] = await Promise.all([registerAndLogin(srv, uniqueName('rl')), registerAndLogin(srv, uniqueName('rl'))]);
        const room = (await api(srv).post('/v1/rooms', { name: 'rl', members: [v.username] }, as(u))).json.room;
        const c = await wsConnect(srv, u.access_token);
        const d = await wsConnect(srv, v.access_token);
        await c.next('hello');
        for (let i = 0; i < 6; i++)
            c.send({ type: 'send', room_id: room.id, body: `r${i}`, client_msg_id: `rl-${i}` });
        for (let i = 0; i < 5; i++)
            c.send({ type: 'typing', room_id: room.id });
        c.send({ type: 'ping' });
        await c.next('pong');
        await waitFor(() => c.frames.filter((f) => f.type === 'ack' || f.type === 'error').length === 6);
        const errs = c.frames.filter((f) => f.type === 'error');
        assert.ok(errs.length >= 2, JSON.stringify(errs));
        assert.ok(errs.every((e) => e.code === 'rate_limited' && e.client_msg_id.startsWith('rl-')));
        d.send({ type: 'ping' });
        await d.next('pong');
        await waitFor(() => d.frames.filter((f) => f.type === 'message').length === 6 - errs.length);
        assert.ok(d.frames.filter((f) => f.type === 'typing').length <= 2, 'excess typing dropped');
        await Promise.all([c.close(), d.close()]);
    } finally {
        await srv.stop();
    }
});

// --- a client that stops reading -------------------------------------------------

function rssKiB(pid) {
    const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return Number(m[1]);
}

test('a client that stops reading is closed with 1013 and the server memory stays bounded', async () => {
    const srv = await startServer({ config: '[websocket]\nsend_queue_bytes = 1048576\n' });
    try {
        const [u, v] = await Promise.all([registerAndLogin(srv, uniqueName('fast')), registerAndLogin(srv, uniqueName('slow'))]);
        const room = (await api(srv).post('/v1/rooms', { name: 'slow', members: [v.username] }, as(u))).json.room;
        const { sock } = await rawUpgrade(srv, v.access_token);
        sock.pause();                          // never reads: the kernel buffers fill, then our queue
        const sender = await wsConnect(srv, u.access_token);
        await sender.next('hello');
        const rss0 = rssKiB(srv.proc.pid);
        const body = 'z'.repeat(4000);
        let sent = 0;
        // Enough to pass the kernel's socket buffers and the 1 MiB queue several times over,
        // in rounds small enough (800 KB of acks) that the sender itself never lags that far.
        while (sent < 10000 && !((await metric(srv, 'chatd_ws_closes_total{code="1013"}')) >= 1)) {
            for (let i = 0; i < 200; i++, sent++)
                sender.send({ type: 'send', room_id: room.id, body, client_msg_id: `slow-${sent}` });
            await waitFor(() => sender.frames.filter((f) => f.type === 'ack').length === sent,
                { timeout: 60000, message: `acks for ${sent} sends (other frames: ${JSON.stringify(sender.frames.filter((f) => f.type !== 'ack').slice(0, 3))})` });
        }
        assert.equal(await metric(srv, 'chatd_ws_closes_total{code="1013"}'), 1, `after ${sent} messages`);
        const rss1 = rssKiB(srv.proc.pid);
        // (AddressSanitizer keeps freed memory in quarantine: RSS says nothing there.)
        if (!process.env.ASAN_OPTIONS)
            assert.ok(rss1 - rss0 < 64 * 1024, `RSS grew by ${rss1 - rss0} KiB`);
        assert.ok(await metric(srv, 'chatd_ws_queue_bytes') < 2 * 1048576);
        // Reading again, the client finds the stream intact, ending with a 1013 close
        // (or just the end, when the server's linger ran out first).
        sock.resume();
        const code = await rawCloseCode(sock, Buffer.alloc(0), 20000);
        assert.ok(code === 1013 || code === null, String(code));
        sock.destroy();
        // the sender is still fine
        await settle(sender);
        await sender.close();
    } finally {
        await srv.stop();
    }
});

// --- shutdown --------------------------------------------------------------------

test('SIGTERM acks in-flight sends, then closes every connection with 1001', async () => {
    const srv = await startServer();
    const [u, v] = await Promise.all([registerAndLogin(srv, uniqueName('d')), registerAndLogin(srv, uniqueName('d'))]);
    const room = (await api(srv).post('/v1/rooms', { name: 'drain', members: [v.username] }, as(u))).json.room;
    const c = await wsConnect(srv, u.access_token);
    const d = await wsConnect(srv, v.access_token);
    await c.next('hello');
    await d.next('hello');
    for (let i = 0; i < 50; i++)
        c.send({ type: 'send', room_id: room.id, body: `d${i}`, client_msg_id: `drain-${i}` });
    await c.next('ack');   // the sends are in: stop while the rest are in flight
    const code = srv.stop();
    const [cc, dc] = await Promise.all([c.closed, d.closed]);
    assert.equal(cc.code, 1001);
    assert.equal(dc.code, 1001);
    assert.equal(await code, 0);
    // every send was answered: acked or refused, none left hanging
    const answered = c.frames.filter((f) => f.type === 'ack' || (f.type === 'error' && f.client_msg_id));
    assert.equal(answered.length, 50);
    const acked = c.frames.filter((f) => f.type === 'ack').map((f) => f.message.seq);
    // and every acked one is on disk
    await srv.restart();
    const hist = await api(srv).get(`/v1/rooms/${room.id}/messages?limit=200`, as(v));
    const stored = hist.json.messages.map((m) => m.seq);
    for (const s of acked)
        assert.ok(stored.includes(s), `acked seq ${s} stored`);
    await srv.stop();
});
