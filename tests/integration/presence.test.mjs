// presence.test.mjs: online/offline across several devices, told once per transition
// to the users sharing a room; the heartbeat timeout of a client that stops answering
// pings; the privacy of GET /v1/presence; last_seen_at across a restart; nobody online
// after a crash.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { startServer, api, registerAndLogin, uniqueName, wsConnect, waitFor, registerUsers, sqliteOnly } from './lib/harness.mjs';

const HEARTBEAT_MS = 300;
let server, http, alice, bob, carol, mallory;

before(async () => {
    server = await startServer({ config: `[websocket]\nheartbeat_ms = ${HEARTBEAT_MS}\n` });
    http = api(server);
    [alice, bob, carol, mallory] = await registerUsers(server, ['alice', 'bob', 'carol', 'mallory']);
    const res = await http.post('/v1/rooms', { name: 'p', members: [bob.username, carol.username] },
        { token: alice.access_token });
    assert.equal(res.status, 201, res.text);
});

after(async () => {
    if (server && server.exitStatus === null)
        await server.stop();
});

async function connect(user) {
    const c = await wsConnect(server, user.access_token);
    await c.next('hello');
    return c;
}

const presenceOf = (conn, user) => conn.frames.filter((f) => f.type === 'presence' && f.user_id === user.user.id);

async function query(asUser, ids) {
    return http.get(`/v1/presence?user_ids=${ids.join(',')}`, { token: asUser.access_token });
}

test('one presence frame per transition, however many devices', async () => {
    const b1 = await connect(bob);
    const a1 = await connect(alice);
    const on = await b1.next({ type: 'presence', user_id: alice.user.id });
    assert.equal(on.status, 'online');
    assert.ok(Math.abs(on.last_seen_at - Date.now()) < 60000);
    assert.deepEqual(Object.keys(on).sort(), ['last_seen_at', 'status', 'type', 'user_id']);

    const a2 = await connect(alice);        // a second device: nothing new
    await a2.close();                       // one of two devices leaves: nothing new
    await a1.close();                       // the last one: offline
    const off = await b1.next({ type: 'presence', user_id: alice.user.id, status: 'offline' });
    assert.ok(off.last_seen_at >= on.last_seen_at);
    assert.ok(off.last_seen_at <= Date.now());

    const a3 = await connect(alice);        // and online again
    await b1.next({ type: 'presence', user_id: alice.user.id, status: 'online' });
    // Announcements of one user go out one at a time, in order: anything the second
    // device had caused would sit before the offline frame.
    assert.deepEqual(presenceOf(b1, alice).map((f) => f.status), ['online', 'offline', 'online']);

    // the user itself and strangers hear nothing
    const m1 = await connect(mallory);
    await a3.close();
    await b1.next({ type: 'presence', user_id: alice.user.id, status: 'offline' });
    m1.send({ type: 'ping' });
    await m1.next('pong');
    assert.equal(m1.frames.filter((f) => f.type === 'presence').length, 0);
    assert.equal(presenceOf(a3, alice).length, 0);
    await Promise.all([b1.close(), m1.close()]);
});

test('users who are not connected are not told', async () => {
    const c1 = await connect(carol);
    await c1.close();
    const b1 = await connect(bob);
    const a1 = await connect(alice);
    await b1.next({ type: 'presence', user_id: alice.user.id, status: 'online' });
    const c2 = await connect(carol);
    // carol connected after alice came online: she learns of alice by asking
    const res = await query(carol, [alice.user.id]);
    assert.equal(res.json.presence[0].status, 'online');
    await Promise.all([a1.close(), b1.close(), c2.close()]);
});

test('GET /v1/presence answers only for users sharing a room with the caller', async () => {
    const a1 = await connect(alice);
    const res = await query(bob, [alice.user.id, mallory.user.id, bob.user.id, 999999]);
    assert.equal(res.status, 200, res.text);
    const byId = Object.fromEntries(res.json.presence.map((p) => [p.user_id, p]));
    assert.deepEqual(Object.keys(byId).map(Number).sort((x, y) => x - y),
        [alice.user.id, bob.user.id].sort((x, y) => x - y));
    assert.equal(byId[alice.user.id].status, 'online');
    assert.equal(byId[bob.user.id].status, 'offline');
    // mallory shares no room with anyone: she learns nothing, not even about alice
    const m = await query(mallory, [alice.user.id, bob.user.id]);
    assert.equal(m.status, 200);
    assert.deepEqual(m.json.presence, []);
    await a1.close();
    await waitFor(async () => (await query(bob, [alice.user.id])).json.presence[0].status === 'offline');
});

test('GET /v1/presence validates its input and needs a token', async () => {
    for (const q of ['', 'user_ids=', 'user_ids=a,b', 'user_ids=1,,2', 'user_ids=-3',
        `user_ids=${Array.from({ length: 201 }, (_, i) => i + 1).join(',')}`]) {
        const res = await http.get(`/v1/presence?${q}`, { token: bob.access_token });
        assert.equal(res.status, 400, q);
        assert.equal(res.json.error.code, 'invalid_argument');
    }
    const res = await http.get(`/v1/presence?user_ids=${alice.user.id}`);
    assert.equal(res.status, 401);
});

/** Upgrades a plain TCP socket and then never answers anything (no pongs). */
function silentClient(user) {
    return new Promise((resolve, reject) => {
        const sock = net.connect(server.port, server.host);
        let buf = Buffer.alloc(0);
        sock.on('data', (d) => {
            buf = Buffer.concat([buf, d]);
            if (sock.upgraded === undefined && buf.indexOf('\r\n\r\n') >= 0) {
                sock.upgraded = buf.toString().startsWith('HTTP/1.1 101');
                if (!sock.upgraded) reject(new Error(buf.toString()));
                else resolve({ sock, data: () => buf });
            }
        });
        sock.on('error', () => {});
        sock.write(`GET /v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
            `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n` +
            `Authorization: Bearer ${user.access_token}\r\n\r\n`);
    });
}

test('a client that stops answering pings goes offline within 2.5 heartbeat periods', async () => {
    const b1 = await connect(bob);
    const t0 = Date.now();
    const { sock, data } = await silentClient(alice);
    await b1.next({ type: 'presence', user_id: alice.user.id, status: 'online' });
    const off = await b1.next({ type: 'presence', user_id: alice.user.id, status: 'offline' }, 10000);
    const elapsed = Date.now() - t0;
    assert.ok(elapsed >= 2 * HEARTBEAT_MS, `offline after ${elapsed} ms`);
    // 2.5 periods is the bound; allow for a loaded test machine on top
    assert.ok(elapsed <= 2.5 * HEARTBEAT_MS + 1500, `offline after ${elapsed} ms`);
    assert.ok(off.last_seen_at - t0 >= 2 * HEARTBEAT_MS - 50);
    // the server pinged it, then closed it with 4000
    await waitFor(() => sock.destroyed || data().includes(Buffer.from([0x88])), { timeout: 5000 });
    const raw = data();
    assert.ok(raw.includes(Buffer.from([0x89, 0x00])), 'pinged');
    const i = raw.indexOf(Buffer.from([0x88]));
    if (i >= 0)
        assert.equal(raw.readUInt16BE(i + 2), 4000);
    sock.destroy();
    // the healthy connection (npm ws answers pings) is still there
    b1.send({ type: 'ping' });
    await b1.next('pong');
    await b1.close();
});

/** last_seen_at as the presence table holds it (null when no row), or undefined
 * when there is no sqlite3 command to look with. */
function storedSeen(srv, userId) {
    try {
        const out = execFileSync('sqlite3', ['-readonly', path.join(srv.dataDir, 'chatd.db'),
            `SELECT last_seen_at FROM presence WHERE user_id = ${Number(userId)}`],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
        return out === '' ? null : Number(out);
    } catch (e) {
        if (e.code === 'ENOENT')
            return undefined;
        throw e;
    }
}

test('last_seen_at is written in batches: GET has it at once, the table within the interval', { skip: sqliteOnly('reads the presence table with the sqlite3 command') }, async (t) => {
    const users = await Promise.all([0, 1, 2].map(() => registerAndLogin(server, uniqueName('s'))));
    const conns = await Promise.all(users.map((u) => connect(u)));
    await Promise.all(conns.map((c) => c.close()));
    const seen = [];
    for (const [i, u] of users.entries()) {
        await waitFor(async () => {
            const r = (await query(u, [u.user.id])).json.presence[0];
            seen[i] = r.last_seen_at;
            return r.status === 'offline' && r.last_seen_at !== null;
        }, { message: 'offline with a last_seen_at' });
        assert.ok(seen[i] <= Date.now() && seen[i] > Date.now() - 60000);
    }
    if (storedSeen(server, users[0].user.id) === undefined)
        return t.skip('no sqlite3 command to read the table with');
    // Written within the flush interval (one second), all three in one batch or two.
    for (const [i, u] of users.entries())
        await waitFor(() => storedSeen(server, u.user.id) === seen[i],
            { timeout: 5000, interval: 100, message: 'last_seen_at in the presence table' });
    // Once in the table, GET answers the same.
    for (const [i, u] of users.entries())
        assert.equal((await query(u, [u.user.id])).json.presence[0].last_seen_at, seen[i]);
});

test('last_seen_at survives a restart; after a crash nobody is online', async () => {
    const srv = await startServer();
    try {
        const [u, v] = await Promise.all([registerAndLogin(srv, uniqueName('u')), registerAndLogin(srv, uniqueName('v'))]);
        const h = api(srv);
        await h.post('/v1/rooms', { name: 'crash', members: [v.username] }, { token: u.access_token });
        const ask = async (ids) => (await h.get(`/v1/presence?user_ids=${ids.join(',')}`, { token: v.access_token })).json.presence;

        const never = await ask([u.user.id]);
        assert.equal(never[0].status, 'offline');
        assert.equal(never[0].last_seen_at, null);

        const watcher = await wsConnect(srv, v.access_token);
        await watcher.next('hello');
        let c = await wsConnect(srv, u.access_token);
        await watcher.next({ type: 'presence', user_id: u.user.id, status: 'online' });
        await c.close();
        const off = await watcher.next({ type: 'presence', user_id: u.user.id, status: 'offline' });
        await watcher.close();
        await srv.restart();                       // graceful
        const after = await ask([u.user.id]);
        assert.equal(after[0].status, 'offline');
        assert.equal(after[0].last_seen_at, off.last_seen_at);

        c = await wsConnect(srv, u.access_token);
        await c.next('hello');
        await waitFor(async () => (await ask([u.user.id]))[0].status === 'online');
        await srv.kill9();
        await srv.restart();
        const crashed = await ask([u.user.id]);
        assert.equal(crashed[0].status, 'offline');
        const m = await h.get('/metrics');
        assert.match(m.text, /^chatd_users_online 0$/m);
    } finally {
        if (srv.exitStatus === null)
            await srv.stop();
    }
});

test('presence metrics', async () => {
    const m = await http.get('/metrics');
    assert.match(m.text, /^chatd_users_online \d+$/m);
    const ev = /^chatd_presence_events_total (\d+)$/m.exec(m.text);
    assert.ok(ev && Number(ev[1]) >= 4);
});
