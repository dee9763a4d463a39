// pg-outage.test.mjs: chatd on PostgreSQL while PostgreSQL goes away and comes back.
// Under a steady load of sends over WebSocket and HTTP, PostgreSQL is stopped with
// `pg_ctl stop -m immediate` (as a crash would) and started again: every acked message
// is in the history afterwards and in PostgreSQL's table, every refused send was
// answered 503 / `unavailable`, /readyz says 503 while the database is down and 200
// after, and the node recovers without a restart (the same WebSocket goes on). A start
// with PostgreSQL unreachable fails at once with an error naming `[database] url`.
//
// It runs its own PostgreSQL server (scripts/pg-throwaway.sh, fsync on), so it needs
// only the server binaries; it runs once, in the SQLite pass of tests/run.sh (the
// PostgreSQL pass would repeat it exactly).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { startServer, api, runChatd, registerAndLogin, uniqueName, waitFor, wsConnect, tmpDir, repoRoot, engine }
    from './lib/harness.mjs';

const SCRIPT = path.join(repoRoot, 'scripts/pg-throwaway.sh');
const haveBinaries = spawnSync('sh', [SCRIPT, 'check']).status === 0;
const skip = !haveBinaries ? 'PostgreSQL server binaries not installed (postgresql-15)'
    : engine === 'pg' ? 'runs once, in the SQLite pass' : false;

function pgctl(...args) {
    const r = spawnSync('sh', [SCRIPT, ...args], { encoding: 'utf8', timeout: 120000 });
    if (r.status !== 0)
        throw new Error(`pg-throwaway.sh ${args.join(' ')}: ${r.stderr}`);
    return r.stdout.trim();
}

// The same, without blocking the event loop: the load goes on meanwhile.
function pgctlAsync(...args) {
    return new Promise((resolve, reject) => {
        execFile('sh', [SCRIPT, ...args], { timeout: 120000 }, (err, stdout, stderr) =>
            (err ? reject(new Error(`pg-throwaway.sh ${args.join(' ')}: ${stderr}`)) : resolve(stdout.trim())));
    });
}

let pgDir = null;
let firstReadAfter = null;      // the outage test's first read once PostgreSQL is back
const servers = [];
after(async () => {
    for (const s of servers)
        if (s.exitStatus === null)
            await s.stop();
    if (pgDir)
        pgctl('stop', pgDir, 'immediate');
});

async function pgQuery(url, sql, params = []) {
    const { default: pg } = await import('pg');
    const c = new pg.Client({ connectionString: url });
    c.on('error', () => { /* reported by the query that fails */ });
    await c.connect();
    try {
        return (await c.query(sql, params)).rows;
    } finally {
        await c.end().catch(() => {});
    }
}

/** A PostgreSQL server of this test's own, with a database `outage` on it. */
async function ownPostgres() {
    pgDir = tmpDir('chatd-pg-outage-');
    const base = pgctl('start', pgDir);
    await pgQuery(base, 'CREATE DATABASE outage');
    const u = new URL(base);
    u.pathname = '/outage';
    return u.toString();
}

const as = (u) => ({ token: u.access_token });

/**
 * Sends one message about every `periodMs`, in turn over HTTP and over the WebSocket,
 * each with its own client_msg_id, and sorts every answer: acked (with the stored
 * message), refused with 503 `unavailable`, or anything else (a failure).
 */
function startLoad(srv, user, room, ws, periodMs = 15) {
    const out = { acked: [], refused: [], other: [], inflight: new Set(), running: true };
    let n = 0;
    ws.ws.on('message', (data) => {
        const f = JSON.parse(data.toString());
        if (!f.client_msg_id || !out.inflight.has(f.client_msg_id))
            return;
        out.inflight.delete(f.client_msg_id);
        if (f.type === 'ack')
            out.acked.push({ via: 'ws', ...f.message });
        else if (f.type === 'error' && f.code === 'unavailable')
            out.refused.push({ via: 'ws', id: f.client_msg_id, at: Date.now() });
        else
            out.other.push({ via: 'ws', frame: f });
    });
    const httpSend = async (id) => {
        try {
            const res = await api(srv).post(`/v1/rooms/${room}/messages`,
                { body: `load ${id}`, client_msg_id: id }, as(user));
            if (res.status === 201)
                out.acked.push({ via: 'http', ...res.json.message });
            else if (res.status === 503 && res.json?.error?.code === 'unavailable')
                out.refused.push({ via: 'http', id, at: Date.now() });
            else
                out.other.push({ via: 'http', status: res.status, text: res.text });
        } catch (e) {
            out.other.push({ via: 'http', error: String(e) });
        } finally {
            out.inflight.delete(id);
        }
    };
    const timer = setInterval(() => {
        const id = `m-${++n}`;
        out.inflight.add(id);
        if (n % 2)
            httpSend(id);
        else
            ws.send({ type: 'send', room_id: room, body: `load ${id}`, client_msg_id: id });
    }, periodMs);
    out.stop = async () => {
        clearInterval(timer);
        out.running = false;
        await waitFor(() => out.inflight.size === 0,
            { timeout: 30000, message: `answers to ${[...out.inflight].join(',')}` });
    };
    return out;
}

async function page(srv, user, room, after) {
    const res = await api(srv).get(`/v1/rooms/${room}/messages?after=${after}&limit=200`, as(user));
    assert.equal(res.status, 200, res.text);
    return res;
}

async function history(srv, user, room) {
    const all = [];
    for (let after = 0; ;) {
        const res = await page(srv, user, room, after);
        all.push(...res.json.messages);
        if (res.json.messages.length === 0 || !res.json.has_more)
            return all;
        after = res.json.messages.at(-1).seq;
    }
}

const readyz = async (srv) => (await api(srv).get('/readyz', { timeout: 3000 })).status;

test('PostgreSQL stopped under load and started again: nothing acked is lost, refusals are 503, the node recovers',
    { skip, timeout: 180000 }, async () => {
        const url = await ownPostgres();
        const srv = await startServer({ config: `[database]\nurl = ${url}\n` });
        servers.push(srv);
        const alice = await registerAndLogin(srv, uniqueName('alice'));
        const room = (await api(srv).post('/v1/rooms', { name: 'outage' }, as(alice))).json.room.id;
        const ws = await wsConnect(srv, alice.access_token);
        await ws.next('hello');

        const load = startLoad(srv, alice, room, ws);
        await waitFor(() => load.acked.length >= 20, { timeout: 10000, message: 'acks before the outage' });
        assert.equal(await readyz(srv), 200);

        const down = Date.now();
        await pgctlAsync('stop', pgDir, 'immediate');
        await waitFor(async () => await readyz(srv) === 503, { timeout: 15000, message: '/readyz 503' });
        const ready = await api(srv).get('/readyz');
        assert.equal(ready.json?.status, 'unavailable', ready.text);
        await waitFor(() => load.refused.some((r) => r.at > down && r.via === 'http') &&
            load.refused.some((r) => r.at > down && r.via === 'ws'),
        { timeout: 15000, message: 'sends refused over HTTP and WebSocket while down' });
        const ackedWhileDown = load.acked.length;

        await pgctlAsync('start', pgDir);
        await waitFor(async () => await readyz(srv) === 200, { timeout: 30000, message: '/readyz 200 again' });
        // Sends succeed again, over the same WebSocket and over HTTP.
        await waitFor(() => load.acked.length >= ackedWhileDown + 20 &&
            load.acked.slice(ackedWhileDown).some((m) => m.via === 'ws') &&
            load.acked.slice(ackedWhileDown).some((m) => m.via === 'http'),
        { timeout: 20000, message: 'acks after the recovery' });
        await load.stop();

        firstReadAfter = await api(srv).get(`/v1/rooms/${room}/messages?limit=1`, as(alice));
        assert.deepEqual(load.other, [], 'every answer is an ack or a 503 unavailable');
        assert.ok(load.refused.length > 0);
        const stored = await history(srv, alice, room);
        const byId = new Map(stored.map((m) => [m.id, m]));
        for (const m of load.acked) {
            assert.ok(byId.has(m.id), `acked message ${m.id} (${m.client_msg_id}) is in the history`);
            assert.equal(byId.get(m.id).seq, m.seq);
            assert.equal(byId.get(m.id).client_msg_id, m.client_msg_id);
        }
        // Per room, seq stays gapless: a refused send spent none.
        assert.deepEqual(stored.map((m) => m.seq), stored.map((_, i) => i + 1));
        // A refused send is not stored (the same client_msg_id was never acked).
        const refusedIds = new Set(load.refused.map((r) => r.id));
        assert.ok(!stored.some((m) => refusedIds.has(m.client_msg_id) &&
            !load.acked.some((a) => a.client_msg_id === m.client_msg_id)),
        'a message answered 503 was not stored');
        const rows = await pgQuery(url, 'SELECT id::int AS id FROM messages WHERE room_id = $1', [room]);
        const inPg = new Set(rows.map((r) => r.id));
        for (const m of load.acked)
            assert.ok(inPg.has(m.id), `acked message ${m.id} is in PostgreSQL`);

        assert.equal(ws.ws.readyState, 1, 'the WebSocket stayed open');
        await ws.close();
        assert.equal(await srv.stop(), 0, srv.logs());
    });

test('the first read after PostgreSQL is back is served', { skip }, () => {
    assert.ok(firstReadAfter, 'the outage test ran');
    assert.equal(firstReadAfter.status, 200, firstReadAfter.text);
});

test('a start with PostgreSQL unreachable fails with an error naming [database] url', { skip, timeout: 60000 },
    async () => {
        if (!pgDir)
            await ownPostgres();
        const url = readFileSync(path.join(pgDir, 'pg/url'), 'utf8').trim();
        pgctl('stop', pgDir, 'fast');
        const dir = tmpDir();
        const conf = path.join(dir, 'chatd.conf');
        writeFileSync(conf, `[database]\nurl = ${url}\n`);
        const r = await runChatd(['-c', conf, '--listen', '127.0.0.1:0', '--data-dir', path.join(dir, 'data')],
            { timeout: 30000 });
        assert.notEqual(r.code, 0, r.stdout);
        assert.doesNotMatch(r.stdout, /listening/);
        assert.match(r.stderr, /\[database\] url/);
        pgctl('start', pgDir);
    });
