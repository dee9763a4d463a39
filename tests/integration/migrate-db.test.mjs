// migrate-db.test.mjs: `chatd migrate-db --to URL` moves a single node from SQLite to
// PostgreSQL. A node on SQLite with users, rooms, messages, read markers, a push
// subscription, refresh tokens and dead letters is stopped and migrated; a node started on the
// PostgreSQL database (with an empty data directory: its keys come from the database)
// shows the same history (ids, seqs), takes the same logins and the same refresh token,
// serves the same JWKS kid and VAPID key, and goes on numbering after the copied ids.
// A running node and a non-empty target are refused, and nothing is written then.
//
// Needs CHATD_TEST_PG_URL (a server whose role may CREATE DATABASE); it makes its own
// databases. It runs once, in the SQLite pass: its source is a SQLite node whatever
// the pass, so a second run on the PostgreSQL pass would repeat it exactly.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { startServer, api, runChatd, registerAndLogin, uniqueName, engine } from './lib/harness.mjs';
import { makeSubscription } from './lib/push-receiver.mjs';

const PG_URL = process.env.CHATD_TEST_PG_URL;
const skip = !PG_URL ? 'needs CHATD_TEST_PG_URL (a PostgreSQL server)'
    : engine === 'pg' ? 'runs once, in the SQLite pass' : false;

const made = [];
let serial = 0;

/** url with its database replaced by name. */
function urlFor(name) {
    const u = new URL(PG_URL);
    u.pathname = `/${name}`;
    return u.toString();
}

async function pgClient(url) {
    const { default: pg } = await import('pg');
    const c = new pg.Client({ connectionString: url });
    c.on('error', () => { /* reported by the query that fails */ });
    await c.connect();
    return c;
}

/** Runs sql on url and returns the rows (a connection of its own each time). */
async function pgQuery(url, sql, params = []) {
    const c = await pgClient(url);
    try {
        return (await c.query(sql, params)).rows;
    } finally {
        await c.end().catch(() => {});
    }
}

/** The target's tables, but core's own two, which opening the database makes. */
async function tablesBeyondCore(url) {
    const rows = await pgQuery(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1");
    return rows.map((t) => t.tablename).filter((t) => t !== 'schema_versions' && t !== 'chatd_keys');
}

async function newDatabase() {
    const name = `migrate_it_${process.pid}_${++serial}`;
    await pgQuery(PG_URL, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await pgQuery(PG_URL, `CREATE DATABASE ${name} TEMPLATE template0 ENCODING 'UTF8'`);
    made.push(name);
    return urlFor(name);
}

const servers = [];
after(async () => {
    for (const s of servers)
        if (s.exitStatus === null)
            await s.stop();
    for (const name of made)
        await pgQuery(PG_URL, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => {});
});

async function start(opts) {
    const s = await startServer(opts);
    servers.push(s);
    return s;
}

function migrate(server, url, extra = []) {
    return runChatd(['-c', server.configPath, '--data-dir', server.dataDir, 'migrate-db',
        ...(url === undefined ? [] : ['--to', url]), ...extra], { timeout: 60000 });
}

const as = (u) => ({ token: u.access_token });

/** What a client sees of the state migrate-db must keep. */
async function snapshot(srv, s) {
    const h = api(srv);
    const history = async (room) =>
        (await h.get(`/v1/rooms/${room}/messages?limit=200`, as(s.alice))).json.messages;
    return {
        jwks: (await h.get('/.well-known/jwks.json')).json,
        vapid: (await h.get('/v1/push/vapid-public-key')).json.key,
        group: await history(s.group),
        dm: await history(s.dm),
        bobRooms: (await h.get('/v1/rooms', as(s.bob))).json.rooms,
        subs: (await h.get('/v1/push/subscriptions', as(s.alice))).json.subscriptions,
    };
}

/*
 * Two dead letters written into the stopped node's database with the sqlite3 tool
 * (making real ones takes a push service failing every retry); returns SQLite's
 * totals {rows, bytes}, or null without the tool.
 */
function addDeadLetters(srv) {
    if (spawnSync('sh', ['-c', 'command -v sqlite3']).status !== 0)
        return null;
    const size = "length(CAST(topic AS BLOB)) + length(CAST(payload AS BLOB)) + " +
        'length(CAST(consumer AS BLOB)) + length(CAST(error AS BLOB))';
    const sql = 'INSERT INTO dead_letters (topic, payload, consumer, error, attempts, ' +
        "first_failed_at, last_failed_at) VALUES ('message.stored', '{\"id\":1}', " +
        "'notification.push', 'endpoint gone', 3, 1000, 2000), ('message.stored', " +
        "'{\"id\":2}', 'notification.push', 'timeout', 5, 3000, 4000);" +
        `UPDATE dead_letters SET size = ${size};` +
        'SELECT rows, bytes FROM dead_letter_totals;';
    const r = spawnSync('sqlite3', [path.join(srv.dataDir, 'chatd.db'), sql], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const [rows, bytes] = r.stdout.trim().split('|').map(Number);
    assert.equal(rows, 2);
    return { rows, bytes };
}

async function populate(srv) {
    const h = api(srv);
    const [alice, bob, carol] = [await registerAndLogin(srv, uniqueName('alice')),
        await registerAndLogin(srv, uniqueName('bob')), await registerAndLogin(srv, uniqueName('carol'))];
    const group = (await h.post('/v1/rooms', { name: 'team ✓', members: [bob.username, carol.username] },
        as(alice))).json.room.id;
    const dm = (await h.post('/v1/dm', { username: bob.username }, as(alice))).json.room.id;
    const bodies = ['hello', 'tab\there', 'two\nlines', 'back\\slash', 'ünïcødé ✓ 💬', '\\N'];
    for (const [i, body] of bodies.entries()) {
        const res = await h.post(`/v1/rooms/${group}/messages`,
            { body, client_msg_id: `c-${i}` }, as(i % 2 ? bob : alice));
        assert.equal(res.status, 201, res.text);
    }
    for (const body of ['psst', 'see you'])
        assert.equal((await h.post(`/v1/rooms/${dm}/messages`, { body }, as(bob))).status, 201);
    assert.equal((await h.post(`/v1/rooms/${group}/read`, { seq: 4 }, as(bob))).status, 204);
    const sub = makeSubscription('https://push.example.com/ep/1').json;
    assert.equal((await h.post('/v1/push/subscriptions', sub, as(alice))).status, 201);
    // A rotated family: bob's first token is spent, its successor live.
    const rot = await h.post('/v1/auth/refresh', { refresh_token: bob.refresh_token });
    assert.equal(rot.status, 200, rot.text);
    return { alice, bob, carol, group, dm, bobNext: rot.json.refresh_token };
}

test('a stopped SQLite node migrated to PostgreSQL keeps its history, logins, tokens and keys',
    { skip, timeout: 120000 }, async () => {
        const src = await start();
        const s = await populate(src);
        const before = await snapshot(src, s);
        const url = await newDatabase();

        // While the node runs its database is in use: refused, and nothing written.
        const busy = await migrate(src, url);
        assert.notEqual(busy.code, 0, busy.stdout);
        assert.match(busy.stderr, /in use: stop the chatd running on it first/);
        assert.deepEqual(await tablesBeyondCore(url), []);
        assert.deepEqual(await pgQuery(url, 'SELECT * FROM schema_versions'), []);

        assert.equal(await src.stop(), 0, src.logs());
        const letters = addDeadLetters(src);
        const run = await migrate(src, url);
        assert.equal(run.code, 0, run.stderr + run.stdout);
        assert.match(run.stdout, /^users\s+3 rows$/m);
        assert.match(run.stdout, /^messages\s+8 rows$/m);
        assert.match(run.stdout, /and 2 keys from /);
        const [{ n }] = await pgQuery(url, 'SELECT count(*)::int AS n FROM messages WHERE room_id = $1', [s.group]);
        assert.equal(n, 6);

        if (letters) {
            // The totals on PostgreSQL are derived: rebuilt from the copied rows.
            assert.match(run.stdout, /^dead_letters\s+2 rows$/m);
            assert.deepEqual(await pgQuery(url, 'SELECT rows::int, bytes::int FROM dead_letter_totals'), [letters]);
        }

        // A new data directory: the keys can only come from the database.
        const dst = await start({ config: `[database]\nurl = ${url}\n` });
        if (letters) {
            const list = await runChatd(['dlq', 'list', '-c', dst.configPath, '--data-dir', dst.dataDir]);
            assert.equal(list.code, 0, list.stderr);
            assert.match(list.stdout, /notification\.push/);
            assert.match(list.stdout, /endpoint gone/);
        }
        const afterwards = await snapshot(dst, s);
        assert.deepEqual(afterwards, before);
        assert.equal(afterwards.jwks.keys[0].kid, before.jwks.keys[0].kid);

        const h = api(dst);
        // The tokens the SQLite node signed are still good, so is the password.
        assert.equal((await h.get('/v1/me', as(s.alice))).json.user.id, s.alice.user.id);
        const login = await h.post('/v1/auth/login', { username: s.carol.username, password: s.carol.password });
        assert.equal(login.status, 200, login.text);
        assert.equal(login.json.user.id, s.carol.user.id);
        const ref = await h.post('/v1/auth/refresh', { refresh_token: s.alice.refresh_token });
        assert.equal(ref.status, 200, ref.text);
        assert.equal((await h.post('/v1/auth/refresh', { refresh_token: s.bobNext })).status, 200);
        // A spent token stays spent (and its reuse revokes the family, as before).
        assert.equal((await h.post('/v1/auth/refresh', { refresh_token: s.bob.refresh_token })).status, 401);

        // Numbering goes on after the copied rows.
        const msg = await h.post(`/v1/rooms/${s.group}/messages`, { body: 'on postgres' }, as(s.alice));
        assert.equal(msg.status, 201, msg.text);
        assert.equal(msg.json.message.seq, 7);
        assert.ok(msg.json.message.id > Math.max(...before.group.map((m) => m.id), ...before.dm.map((m) => m.id)));
        const dave = await registerAndLogin(dst, uniqueName('dave'));
        assert.ok(dave.user.id > s.carol.user.id);
        const room = await h.post('/v1/rooms', { name: 'new' }, as(dave));
        assert.ok(room.json.room.id > Math.max(s.group, s.dm));
        // The same client_msg_id is still recognised as a repeat.
        const again = await h.post(`/v1/rooms/${s.group}/messages`, { body: 'hello', client_msg_id: 'c-0' }, as(s.alice));
        assert.equal(again.status, 200, again.text);
        assert.equal(again.json.message.id, before.group[0].id);
        assert.equal(await dst.stop(), 0, dst.logs());

        // The target now holds a node's data: a second migration is refused, unchanged.
        const twice = await migrate(src, url);
        assert.notEqual(twice.code, 0);
        assert.match(twice.stderr, /not empty/);
        const [{ m }] = await pgQuery(url, 'SELECT count(*)::int AS m FROM messages');
        assert.equal(m, 9);
    });

test('migrate-db refuses a missing or foreign --to, and a target it cannot reach', { skip }, async () => {
    const src = await start();
    assert.equal(await src.stop(), 0);
    const none = await migrate(src, undefined);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /usage: chatd migrate-db --to/);
    const mysql = await migrate(src, 'mysql://root@127.0.0.1/chat');
    assert.equal(mysql.code, 2);
    assert.match(mysql.stderr, /postgres:\/\//);
    const extra = await migrate(src, urlFor('x'), ['--force']);
    assert.equal(extra.code, 2);
    // Port 1 on loopback: nothing listens there.
    const down = await migrate(src, 'postgres://postgres@127.0.0.1:1/none?connect_timeout=2');
    assert.notEqual(down.code, 0);
    assert.match(down.stderr, /url|PostgreSQL|connect/i);
});

test('a database holding someone else\'s tables is refused before anything is made', { skip }, async () => {
    const src = await start();
    assert.equal(await src.stop(), 0);
    const url = await newDatabase();
    await pgQuery(url, 'CREATE TABLE theirs (x bigint)');
    const r = await migrate(src, url);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /not empty.*theirs/);
    assert.deepEqual(await tablesBeyondCore(url), ['theirs']);
});

test('a node that was killed (its WAL not yet checkpointed) is migrated whole', { skip }, async () => {
    const src = await start();
    const h = api(src);
    const alice = await registerAndLogin(src, uniqueName('alice'));
    const room = (await h.post('/v1/rooms', { name: 'wal' }, as(alice))).json.room.id;
    for (let i = 0; i < 25; i++)
        assert.equal((await h.post(`/v1/rooms/${room}/messages`, { body: `m${i}` }, as(alice))).status, 201);
    await src.kill9();
    const url = await newDatabase();
    const r = await migrate(src, url);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^messages\s+25 rows$/m);
    const rows = await pgQuery(url, 'SELECT max(seq)::int AS s, count(*)::int AS n FROM messages WHERE room_id = $1', [room]);
    assert.deepEqual(rows, [{ s: 25, n: 25 }]);
});
