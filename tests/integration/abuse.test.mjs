// abuse.test.mjs: floods and hostile input. Past max_connections new clients get a clean
// 503; slowloris heads (HTTP and WebSocket handshake) are cut off after
// header_timeout_ms while others are served; a million tiny frames from one client leave
// the server responsive with bounded memory; huge header counts, deeply nested JSON and
// ill-typed bodies are refused with the documented 4xx, never a 500 or a crash; the
// connect, login, register and send rate limits answer 429 / rate_limited and are counted.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import {
    startServer, api, registerAndLogin, uniqueName, wsConnect, waitFor,
} from './lib/harness.mjs';

// Under ASan (quarantined frees) or a CHATD_WRAPPER such as valgrind, memory figures
// mean little and everything is slower: time bounds stretch, RSS is only reported.
const instrumented = Boolean(process.env.ASAN_OPTIONS || process.env.CHATD_WRAPPER);
const SLOW = instrumented ? 5 : 1;

const servers = [];
after(async () => {
    for (const s of servers) {
        if (s.exitStatus === null)
            await s.stop();
    }
});

async function start(config) {
    const s = await startServer({ config });
    servers.push(s);
    return s;
}

function assertAlive(s) {
    assert.equal(s.exitStatus, null, `chatd exited: ${JSON.stringify(s.exitStatus)}\n${s.logs().slice(-3000)}`);
}

/** A raw TCP client that collects everything it reads; `ended` resolves at close. */
function rawClient(s) {
    const sock = net.connect(s.port, s.host);
    const c = { sock, data: Buffer.alloc(0), closed: false };
    sock.on('data', (d) => { c.data = Buffer.concat([c.data, d]); });
    sock.on('error', () => {});
    c.ended = new Promise((resolve) => sock.on('close', () => { c.closed = true; resolve(); }));
    c.connected = new Promise((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject); });
    c.text = () => c.data.toString('latin1');
    return c;
}

function deadline(promise, ms, what) {
    let t;
    return Promise.race([promise, new Promise((_, rej) => { t = setTimeout(() => rej(new Error(`${what}: not within ${ms} ms`)), ms); })])
        .finally(() => clearTimeout(t));
}

async function timed(fn) {
    const t0 = Date.now();
    const v = await fn();
    return [v, Date.now() - t0];
}

async function metric(s, name) {
    const res = await api(s).get('/metrics');
    const line = res.text.split('\n').find((l) => l.split(' ')[0] === name);
    return line ? Number(line.split(' ').pop()) : undefined;
}

function rssBytes(s) {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${s.proc.pid}/status`, 'utf8'));
    return Number(m[1]) * 1024;
}

test('a connection flood past max_connections gets clean 503s and no crash', { timeout: 30000 }, async () => {
    const s = await start('[server]\nmax_connections = 50');
    const held = [];
    for (let i = 0; i < 50; i++) {
        const c = rawClient(s);
        await c.connected;
        held.push(c);
    }
    // The server has taken the first 50 once one of them is answered.
    held[0].sock.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitFor(() => held[0].text().includes('\r\n\r\n'), { message: 'held connection served' });
    const extra = Array.from({ length: 30 }, () => rawClient(s));
    await deadline(Promise.all(extra.map((c) => c.ended)), 5000, 'extra connections closed');
    for (const c of extra) {
        const t = c.text();
        assert.ok(t === '' || /^HTTP\/1\.1 503 /.test(t), `refusal: ${JSON.stringify(t.slice(0, 200))}`);
        if (t)
            assert.match(t, /"code":"unavailable"/);
    }
    assert.ok(extra.some((c) => c.text().startsWith('HTTP/1.1 503')), 'at least one refusal says 503');
    // A WebSocket upgrade is refused too, with the same 503.
    await assert.rejects(wsConnect(s, null), (e) => e.status === 503 || /socket hang up|ECONNRESET/.test(e.message));
    for (const c of held)
        c.sock.destroy();
    // Slots come back once the server sees the closes.
    await waitFor(async () => (await api(s).get('/healthz')).status === 200, { timeout: 5000, message: 'served again' });
    const u = await registerAndLogin(s);
    const ws = await wsConnect(s, u.access_token);
    await ws.next('hello');
    await ws.close();
    assertAlive(s);
});

test('slowloris heads on HTTP and on the WebSocket handshake are cut off; others are served', { timeout: 30000 }, async () => {
    const s = await start('[server]\nheader_timeout_ms = 1000');
    const u = await registerAndLogin(s);
    const heads = [
        'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n',
        `GET /v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
            `Sec-WebSocket-Key: ${crypto.randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n` +
            `Authorization: Bearer ${u.access_token}\r\n\r\n`,
    ];
    const slow = [];
    for (let i = 0; i < 60; i++) {
        const c = rawClient(s);
        c.head = heads[i % 2];
        c.sent = 0;
        slow.push(c);
    }
    await Promise.all(slow.map((c) => c.connected));
    const t0 = Date.now();
    // One byte per connection every 50 ms: the heads would take seconds to finish.
    const drip = setInterval(() => {
        for (const c of slow) {
            if (!c.closed && c.sent < c.head.length - 1)
                c.sock.write(c.head[c.sent++]);
        }
    }, 50);
    try {
        // Meanwhile normal clients are served promptly.
        for (let i = 0; i < 5; i++) {
            const [res, ms] = await timed(() => api(s).get('/healthz'));
            assert.equal(res.status, 200);
            assert.ok(ms < 500 * SLOW, `healthz took ${ms} ms under slowloris`);
            const [ws, wms] = await timed(() => wsConnect(s, u.access_token));
            await ws.next('hello');
            assert.ok(wms < 1000 * SLOW, `upgrade took ${wms} ms under slowloris`);
            await ws.close();
        }
        await deadline(Promise.all(slow.map((c) => c.ended)), 5000, 'slow heads cut off');
    } finally {
        clearInterval(drip);
    }
    const took = Date.now() - t0;
    assert.ok(took >= 900, `cut off after ${took} ms, before header_timeout_ms`);
    for (const c of slow) {
        const t = c.text();
        assert.ok(t === '' || /^HTTP\/1\.1 408 /.test(t), `slow head answer: ${JSON.stringify(t.slice(0, 200))}`);
        assert.ok(c.sent < c.head.length - 1, 'the head finished before the cut');
    }
    assert.ok(slow.some((c) => c.text().startsWith('HTTP/1.1 408')), 'at least one says 408');
    assertAlive(s);
});

/** Opens a WebSocket by hand: resolves with the raw socket right after the 101. */
async function rawWs(s, token) {
    const c = rawClient(s);
    await c.connected;
    c.sock.write(`GET /v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${crypto.randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n` +
        `Authorization: Bearer ${token}\r\n\r\n`);
    await waitFor(() => c.text().includes('\r\n\r\n'), { message: '101' });
    assert.match(c.text(), /^HTTP\/1\.1 101 /);
    return c;
}

/** n masked client frames of the given opcode and payload, in one buffer. */
function frames(n, opcode, payload = Buffer.alloc(0)) {
    const one = Buffer.alloc(6 + payload.length);
    one[0] = 0x80 | opcode;
    one[1] = 0x80 | payload.length;   // masked, small payload; mask key 0 keeps bytes as they are
    payload.copy(one, 6);
    const buf = Buffer.alloc(one.length * n);
    for (let i = 0; i < n; i++)
        one.copy(buf, i * one.length);
    return buf;
}

/** The close code in a server close frame, if the data holds one. */
function closeCode(c) {
    const d = c.data;
    const i = d.indexOf(Buffer.from([0x88]));
    if (i < 0 || i + 3 >= d.length)
        return undefined;
    return d.readUInt16BE(i + 2);
}

test('a million tiny frames: others stay served, memory stays bounded', { timeout: 60000 }, async (t) => {
    const s = await start('');
    const [abuser, other] = await Promise.all([registerAndLogin(s), registerAndLogin(s)]);
    const ws = await wsConnect(s, other.access_token);
    await ws.next('hello');
    const rss0 = rssBytes(s);

    // A million WebSocket pings, written at full speed; the pongs are read and dropped.
    const c = await rawWs(s, abuser.access_token);
    const N = 1000000;
    const buf = frames(N, 0x9);
    c.sock.write(buf);
    let maxRss = rss0;
    const rtts = [];
    const sampler = setInterval(() => { maxRss = Math.max(maxRss, rssBytes(s)); }, 20);
    try {
        // Responsive meanwhile: application pings and HTTP.
        while (!c.closed && c.sock.writableLength > 0 && rtts.length < 200) {
            const [, ms] = await timed(async () => { ws.send({ type: 'ping' }); await ws.next('pong'); });
            rtts.push(ms);
            const [res, hms] = await timed(() => api(s).get('/healthz'));
            assert.equal(res.status, 200);
            rtts.push(hms);
        }
        // An application ping after the flood: its pong means every frame before it was read.
        c.sock.write(frames(1, 0x1, Buffer.from('{"type":"ping"}')));
        await waitFor(() => c.closed || c.text().includes('"type":"pong"'),
            { timeout: 45000 * SLOW, interval: 50, message: 'the server reads the flood' });
        // The flood is fully read (or the abuser was closed): either way, a round trip works.
        const [, ms] = await timed(async () => { ws.send({ type: 'ping' }); await ws.next('pong'); });
        rtts.push(ms);
    } finally {
        clearInterval(sampler);
    }
    const slowest = Math.max(...rtts);
    t.diagnostic(`flood: abuser ${c.closed ? `closed (${closeCode(c)})` : 'still open'}, ${c.data.length} bytes back, ` +
        `slowest round trip ${slowest} ms over ${rtts.length}, RSS +${((maxRss - rss0) / 1048576).toFixed(1)} MiB`);
    assert.ok(slowest < 2000 * SLOW, `a round trip took ${slowest} ms during the flood`);
    const growth = maxRss - rss0;
    if (!instrumented)
        assert.ok(growth < 64 * 1024 * 1024, `RSS grew by ${(growth / 1048576).toFixed(1)} MiB`);
    if (c.closed) {
        // Closed: only for a documented reason (1013 slow reader, 1008 policy).
        const code = closeCode(c);
        assert.ok(code === undefined || [1008, 1013].includes(code), `abuser closed with ${code}`);
    }
    c.sock.destroy();
    await ws.close();
    assertAlive(s);
});

// wslay answers every ping itself and its pongs pass the send_queue_bytes check, so
// the websocket module bounds them after each read: a client that pings without reading
// is closed with 1013 like any other slow consumer, and memory stays bounded.
test('pings from a client that never reads do not grow memory without bound', {
    timeout: 60000,
}, async (t) => {
    const s = await start('');
    const u = await registerAndLogin(s);
    const rss0 = rssBytes(s);
    const c = await rawWs(s, u.access_token);
    c.sock.pause();
    c.sock.write(frames(2000000, 0x9));
    let maxRss = rss0;
    await deadline(new Promise((resolve) => {
        const iv = setInterval(() => {
            maxRss = Math.max(maxRss, rssBytes(s));
            if (c.closed || c.sock.writableLength === 0) {
                clearInterval(iv);
                resolve();
            }
        }, 50);
    }), 30000 * SLOW, 'the server reads the pings');
    maxRss = Math.max(maxRss, rssBytes(s));
    t.diagnostic(`RSS +${((maxRss - rss0) / 1048576).toFixed(1)} MiB, abuser ${c.closed ? 'closed' : 'open'}`);
    c.sock.destroy();
    assertAlive(s);
    if (!instrumented)
        assert.ok(maxRss - rss0 < 32 * 1024 * 1024, `RSS grew by ${((maxRss - rss0) / 1048576).toFixed(1)} MiB`);
});

test('a stream of bad frames is closed with 1008 and the rest is not read', { timeout: 30000 }, async () => {
    const s = await start('');
    const u = await registerAndLogin(s);
    const c = await rawWs(s, u.access_token);
    c.sock.write(frames(1000000, 0x1, Buffer.from('x')));
    await deadline(c.ended, 10000, 'bad-frame flood closed');
    assert.equal(closeCode(c), 1008, `close frame: ${c.data.subarray(-40).toString('hex')}`);
    const errors = c.text().split('"type":"error"').length - 1;
    assert.ok(errors <= 10, `${errors} error frames before the close`);
    assert.equal((await api(s).get('/healthz')).status, 200);
    assertAlive(s);
});

test('huge headers answer 431, deeply nested JSON 400 or an error frame', { timeout: 30000 }, async () => {
    const s = await start('');
    const u = await registerAndLogin(s);
    const headers = {};
    for (let i = 0; i < 1000; i++)
        headers[`X-H${i}`] = 'v';
    let res = await api(s).get('/healthz', { headers });
    assert.equal(res.status, 431, res.text);
    assert.equal(res.json?.error?.code, 'invalid_argument');
    res = await api(s).get('/healthz', { headers: { 'X-Big': 'a'.repeat(64 * 1024) } });
    assert.equal(res.status, 431, res.text);
    res = await api(s).get('/' + 'a'.repeat(64 * 1024));
    assert.ok([414, 431].includes(res.status), `long target: ${res.status}`);

    const deepArr = '['.repeat(30000) + ']'.repeat(30000);
    const deepObj = '{"a":'.repeat(10000) + '1' + '}'.repeat(10000);
    const bodies = [
        `{"name":${deepArr}}`, deepArr, deepObj, `{"username":${deepObj.slice(0, 40000)}`,
    ];
    const routes = [
        ['POST', '/v1/auth/register'], ['POST', '/v1/auth/login'], ['POST', '/v1/rooms'],
        ['POST', '/v1/rooms/1/messages'], ['POST', '/v1/dm'],
    ];
    for (const [method, p] of routes) {
        for (const body of bodies) {
            const r = await api(s).request(method, p, { body, token: u.access_token });
            assert.equal(r.status, 400, `${method} ${p} nested: ${r.status} ${r.text}`);
            assert.equal(r.json?.error?.code, 'invalid_argument');
        }
    }
    const ws = await wsConnect(s, u.access_token);
    await ws.next('hello');
    for (const body of [deepArr, `{"type":"send","room_id":1,"body":${deepArr}}`, deepObj]) {
        ws.send(body);
        const e = await ws.next('error');
        assert.equal(e.code, 'invalid_argument', JSON.stringify(e));
    }
    ws.send({ type: 'ping' });
    await ws.next('pong');
    await ws.close();
    assertAlive(s);
});

test('every endpoint answers wrong types and missing fields with 400 invalid_argument', { timeout: 60000 }, async () => {
    const s = await start('');
    const http = api(s);
    const [a, b] = await Promise.all([registerAndLogin(s), registerAndLogin(s)]);
    const room = (await http.post('/v1/rooms', { name: 'r', members: [b.username] }, { token: a.access_token })).json.room.id;
    const wrong = [null, true, 0, -1, 1.5, 1e300, 'x', '', [], {}, ['a'], { a: 1 }];
    // route, a valid body, the fields to spoil
    const routes = [
        ['POST', '/v1/auth/register', { username: uniqueName('w'), password: 'correct horse battery' }],
        ['POST', '/v1/auth/login', { username: a.username, password: 'correct horse battery' }],
        ['POST', '/v1/auth/refresh', { refresh_token: 'x'.repeat(43) }],
        ['POST', '/v1/auth/logout', { refresh_token: 'x'.repeat(43) }],
        ['POST', '/v1/rooms', { name: 'n', members: [b.username] }],
        ['POST', `/v1/rooms/${room}/members`, { username: b.username }],
        ['POST', '/v1/dm', { username: b.username }],
        ['POST', `/v1/rooms/${room}/messages`, { body: 'hi', client_msg_id: 'k' }],
        ['POST', `/v1/rooms/${room}/read`, { seq: 1 }],
        ['POST', '/v1/push/subscriptions', { endpoint: 'https://push.example.com/e', keys: { p256dh: 'x', auth: 'y' } }],
    ];
    // A value of the right type (any string for a string, an integer >= 0 for a number,
    // an array of strings for an array) is not this test's business.
    const wrongType = (good, v) => {
        if (typeof good === 'string')
            return typeof v !== 'string';
        if (typeof good === 'number')
            return !(Number.isSafeInteger(v) && v >= 0);
        if (Array.isArray(good))
            return !(Array.isArray(v) && v.every((x) => typeof x === 'string'));
        return typeof v !== 'object' || v === null || Array.isArray(v);
    };
    const failures = [];
    const check = async (method, p, body, what, okStatuses = [400]) => {
        const r = await http.request(method, p, { body, token: a.access_token });
        if (!okStatuses.includes(r.status) || (r.status === 400 && r.json?.error?.code !== 'invalid_argument'))
            failures.push(`${method} ${p} ${what}: ${r.status} ${r.text.slice(0, 160)}`);
    };
    for (const [method, p, valid] of routes) {
        for (const raw of ['', 'null', '[]', '42', '"s"', '{', '{"a":1,}', '\u00ff\u00fe', '{}'])
            await check(method, p, raw === '' ? undefined : raw, `body ${JSON.stringify(raw)}`);
        for (const field of Object.keys(valid)) {
            const rest = { ...valid };
            delete rest[field];
            // Optional fields may be left out.
            const optional = field === 'client_msg_id' || field === 'members';
            await check(method, p, rest, `without ${field}`, optional ? [200, 201] : [400]);
            for (const v of wrong) {
                if (!wrongType(valid[field], v) || (optional && v === null))
                    continue;
                const spoiled = { ...valid, [field]: v };
                await check(method, p, spoiled, `${field}=${JSON.stringify(v)}`);
            }
        }
    }
    // Path and query parameters.
    for (const p of [`/v1/rooms/abc`, '/v1/rooms/0', '/v1/rooms/-1', '/v1/rooms/1.5', '/v1/rooms/99999999999999999999',
        `/v1/rooms/${room}/messages?limit=abc`, `/v1/rooms/${room}/messages?before=-1`,
        `/v1/rooms/${room}/messages?after=x`, `/v1/rooms/${room}/messages?limit=1e9`,
        '/v1/presence?user_ids=abc', '/v1/presence?user_ids=1,,2'])
        await check('GET', p, undefined, 'bad parameter');
    await check('DELETE', `/v1/rooms/${room}/members/abc`, undefined, 'bad id');
    // A subscription id is only ever looked up among the caller's own: 404 is fine too.
    await check('DELETE', '/v1/push/subscriptions/abc', undefined, 'bad id', [400, 404]);
    const r500 = (await http.get('/metrics')).text.split('\n').filter((l) => /code="5\d\d"/.test(l) && !/ 0$/.test(l));
    assert.deepEqual(failures, [], `answers other than 400 invalid_argument:\n${failures.join('\n')}`);
    assert.deepEqual(r500, [], 'some requests answered 5xx');
    assertAlive(s);
});

test('rate limits on connect, register, send and login answer 429 / rate_limited and are counted', { timeout: 30000 }, async () => {
    const s = await start(`[limits]
registrations_per_min = 3
login_failures_per_min = 3
connects_per_s = 1
connects_burst = 3
messages_per_s = 1
messages_burst = 3`);
    const http = api(s);
    const users = [];
    for (let i = 0; i < 3; i++)
        users.push(await registerAndLogin(s));
    // register: per client address
    let r = await http.post('/v1/auth/register', { username: uniqueName('r'), password: 'correct horse battery' });
    assert.equal(r.status, 429, r.text);
    assert.equal(r.json.error.code, 'rate_limited');
    assert.ok(Number(r.headers['retry-after']) >= 1, `Retry-After ${r.headers['retry-after']}`);

    // connect: per client address, refused before the upgrade
    const conns = [];
    for (let i = 0; i < 3; i++)
        conns.push(await wsConnect(s, users[i].access_token));
    const refused = await wsConnect(s, users[0].access_token).then(() => null, (e) => e);
    assert.equal(refused?.status, 429, String(refused));
    assert.equal(refused.json?.error?.code, 'rate_limited');
    const retry = Number(refused.headers['retry-after']);
    assert.ok(retry >= 1 && retry <= 2, `Retry-After ${retry}`);

    // send: per user, HTTP and WebSocket together
    const room = (await http.post('/v1/rooms', { name: 'r', members: [users[1].username] }, { token: users[0].access_token })).json.room.id;
    const [ws] = conns;
    await ws.next('hello');
    for (let i = 0; i < 3; i++) {
        r = await http.post(`/v1/rooms/${room}/messages`, { body: `m${i}` }, { token: users[0].access_token });
        if (r.status === 429)
            break;
        assert.equal(r.status, 201, r.text);
    }
    r = await http.post(`/v1/rooms/${room}/messages`, { body: 'over' }, { token: users[0].access_token });
    assert.equal(r.status, 429, r.text);
    assert.equal(r.json.error.code, 'rate_limited');
    assert.ok(Number(r.headers['retry-after']) >= 1);
    ws.send({ type: 'send', room_id: room, body: 'over ws', client_msg_id: 'o1' });
    const e = await ws.next({ type: 'error', client_msg_id: 'o1' });
    assert.equal(e.code, 'rate_limited', JSON.stringify(e));
    assert.ok(e.retry_after_ms > 0);
    // Another user's budget is its own.
    r = await http.post(`/v1/rooms/${room}/messages`, { body: 'from b' }, { token: users[1].access_token });
    assert.equal(r.status, 201, r.text);

    // login failures: per username and per client address
    for (let i = 0; i < 3; i++) {
        r = await http.post('/v1/auth/login', { username: users[2].username, password: 'wrong password' });
        assert.equal(r.status, 401, r.text);
    }
    r = await http.post('/v1/auth/login', { username: users[2].username, password: 'wrong password' });
    assert.equal(r.status, 429, r.text);
    assert.ok(Number(r.headers['retry-after']) >= 1);
    // The address is locked out too: another user's correct password from it waits.
    r = await http.post('/v1/auth/login', { username: users[0].username, password: users[0].password });
    assert.equal(r.status, 429, `per-address lockout: ${r.status} ${r.text}`);

    // The counters.
    assert.ok(await metric(s, 'chatd_ws_upgrades_rejected_total') >= 1, 'chatd_ws_upgrades_rejected_total');
    assert.ok(await metric(s, 'chatd_messages_rejected_total') >= 2, 'chatd_messages_rejected_total');
    assert.ok(await metric(s, 'chatd_logins_total{result="throttled"}') >= 1, 'logins throttled');
    assert.ok(await metric(s, 'chatd_http_requests_total{route="/v1/auth/register",code="429"}') >= 1, 'register 429s');
    for (const c of conns)
        await c.close();
    assertAlive(s);
});
