// ws-sync-memory.test.mjs: a sync of a large backlog is read from the database page
// by page as the client drains it. Connections that sync and never read hold no more
// than their send queue each (docs/protocol.md, "sync"), and a replay that makes no
// progress for [websocket] sync_stall_ms is closed with 1013; a client that pauses
// for less than that and reads again gets the whole sync, in order. The live messages
// a sync holds back count against the same send queue.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { DEFAULT_CONFIG, startServer, api, registerUsers, uniqueName, wsConnect, waitFor } from './lib/harness.mjs';

const WRAPPED = Boolean((process.env.CHATD_WRAPPER ?? '').trim());
// AddressSanitizer keeps freed memory in quarantine and valgrind has its own heap:
// RSS says nothing about chatd's own memory there.
const MEASURE_RSS = !WRAPPED && !process.env.ASAN_OPTIONS;
const ROOMS = 10;
const PER_ROOM = 500;                 // the most one sync replays of a room
const BODY = 'm'.repeat(4000);        // 5,000 messages of 4 KB: about 21 MB in one sync
const QUEUE = 1048576;                // [websocket] send_queue_bytes
const STALL_MS = 5000;                // [websocket] sync_stall_ms
const CONNS = WRAPPED ? 2 : 16;
const SLACK_KIB = 32 * 1024;          // thread-pool arenas, SQLite page caches, pages in flight

let server, http, alice, bob, rooms;

const config = (stallMs) => `[websocket]\nsend_queue_bytes = ${QUEUE}\nheartbeat_ms = 600000\n` +
    `sync_stall_ms = ${stallMs}\n`;

before(async () => {
    server = await startServer({ config: config(STALL_MS) });
    http = api(server);
    [alice, bob] = await registerUsers(server, ['alice', 'bob']);
    rooms = [];
    for (let r = 0; r < ROOMS; r++) {
        const res = await http.post('/v1/rooms', { name: uniqueName('room'), members: [bob.username] },
            { token: alice.access_token });
        assert.equal(res.status, 201, res.text);
        rooms.push(res.json.room.id);
    }
    const a = await wsConnect(server, alice.access_token);
    await a.next('hello');
    for (const room of rooms)
        await sendMany(a, room, PER_ROOM, 'fill');
    await a.close();
});

/* n messages of BODY from conn c, in rounds of 100: their acks (420 KB) fit the
 * sender's own send queue even when a busy machine lets it read nothing meanwhile. */
async function sendMany(c, room, n, tag) {
    const acks = () => c.frames.filter((f) => f.type === 'ack').length;
    const base = acks();
    for (let i = 0; i < n; i++) {
        c.send({ type: 'send', room_id: room, body: BODY, client_msg_id: `${tag}-${room}-${i}` });
        if ((i + 1) % 100 === 0 || i + 1 === n)
            await waitFor(() => acks() - base >= i + 1, { timeout: 60000, message: `acks for ${i + 1} sends` });
    }
}

after(async () => {
    if (server && server.exitStatus === null)
        assert.equal(await server.stop(), 0, server.logs());
});

async function metric(name) {
    const res = await http.get('/metrics');
    const line = res.text.split('\n').find((l) => l.split(' ')[0] === name);
    return line ? Number(line.split(' ').pop()) : 0;
}

function status(pid, field) {
    const m = new RegExp(`${field}:\\s+(\\d+)`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return Number(m[1]);
}

const syncAll = () => ({ type: 'sync', rooms: Object.fromEntries(rooms.map((r) => [r, 0])) });

async function pausedSync() {
    const c = await wsConnect(server, bob.access_token);
    await c.next('hello');
    c.ws.pause();                      // nothing more is read: kernel buffers fill, then ours
    c.send(syncAll());
    return c;
}

test('a client that pauses in a big sync and reads again gets all of it, in order, then synced', async () => {
    const c = await pausedSync();
    // The replay waits for the client: the server's queue holds a part of it.
    await waitFor(async () => (await metric('chatd_ws_queue_bytes')) >= QUEUE / 4,
        { timeout: 30000, message: 'the replay filled the queue' });
    c.ws.resume();
    await c.next('synced', 120000);
    const msgs = c.frames.filter((f) => f.type === 'message').map((f) => f.message);
    assert.equal(msgs.length, ROOMS * PER_ROOM);
    msgs.forEach((m, i) => {
        assert.equal(m.room_id, rooms[Math.floor(i / PER_ROOM)], `message ${i}`);
        assert.equal(m.seq, (i % PER_ROOM) + 1, `message ${i}`);
    });
    assert.ok(!c.frames.some((f) => f.type === 'error' || f.type === 'sync.truncated'));
    assert.equal(c.frames.at(-1).type, 'synced');
    await c.close();
});

test('non-reading connections in a big sync hold at most their send queue each; a stalled replay is closed 1013', async () => {
    const pid = server.proc.pid;
    const closes0 = await metric('chatd_ws_closes_total{code="1013"}');
    if (MEASURE_RSS)
        writeFileSync(`/proc/${pid}/clear_refs`, '5');   // VmHWM starts again from VmRSS
    const rss0 = MEASURE_RSS ? status(pid, 'VmRSS') : 0;
    const limitKiB = CONNS * QUEUE / 1024 + SLACK_KIB;
    const t0 = Date.now();
    const conns = await Promise.all(Array.from({ length: CONNS }, pausedSync));
    // Until every connection is closed for its stall: memory checked all along.
    const deadline = t0 + STALL_MS + 60000;
    let firstClose = 0, closed = 0;
    while (closed < CONNS) {
        if (MEASURE_RSS) {
            const grew = status(pid, 'VmRSS') - rss0;
            assert.ok(grew < limitKiB, `RSS grew by ${grew} KiB with ${CONNS} syncs (limit ${limitKiB} KiB)`);
        }
        closed = (await metric('chatd_ws_closes_total{code="1013"}')) - closes0;
        if (closed && !firstClose)
            firstClose = Date.now();
        assert.ok(Date.now() < deadline, `${closed} of ${CONNS} connections closed with 1013`);
        await new Promise((r) => setTimeout(r, 50));
    }
    const lastClose = Date.now();
    if (MEASURE_RSS) {
        const hwm = status(pid, 'VmHWM') - rss0;
        console.log(`# ${CONNS} non-reading syncs: RSS peak +${hwm} KiB (limit ${limitKiB} KiB)`);
        assert.ok(hwm < limitKiB, `peak RSS grew by ${hwm} KiB (limit ${limitKiB} KiB)`);
    }
    // Closed by the stall bound: not before it, and within it plus the check's period.
    assert.ok(firstClose - t0 >= STALL_MS, `first close after ${firstClose - t0} ms`);
    assert.ok(lastClose - t0 < STALL_MS + 30000, `last close after ${lastClose - t0} ms`);
    // Reading again, each client finds the replay cut short by the 1013 close (or the
    // end of the stream, when the server's 3 s linger ran out first).
    for (const c of conns)
        c.ws.resume();
    for (const c of conns) {
        const { code } = await c.closed;
        assert.ok(code === 1013 || code === 1006, String(code));
        assert.ok(!c.frames.some((f) => f.type === 'synced'));
    }
    assert.equal(await metric('chatd_ws_queue_bytes'), 0);
});

test('live messages held back during a sync count against the send queue: past it, 1013', async () => {
    // A server whose stall bound is far away: the close below is the queue's.
    writeFileSync(server.configPath, `${DEFAULT_CONFIG}\n${config(600000)}`);
    await server.restart();
    const closes0 = await metric('chatd_ws_closes_total{code="1013"}');
    const delivered0 = await metric('chatd_ws_deliveries_total');
    const c = await pausedSync();
    // The replay has begun (sync deliveries are counted): what follows is held back.
    await waitFor(async () => (await metric('chatd_ws_deliveries_total')) > delivered0,
        { timeout: 30000, message: 'the replay began' });
    // 220 frames of about 4.2 KB: 924 KB, under the queue's 1 MiB alone, past it with
    // the replay's part queued (at least a quarter of it while the client reads nothing).
    const a = await wsConnect(server, alice.access_token);
    await a.next('hello');
    await sendMany(a, rooms[0], 220, 'live');
    await waitFor(async () => (await metric('chatd_ws_closes_total{code="1013"}')) > closes0,
        { timeout: 30000, message: 'the syncing connection closed with 1013' });
    c.ws.resume();
    const { code } = await c.closed;
    assert.ok(code === 1013 || code === 1006, String(code));
    assert.ok(!c.frames.some((f) => f.type === 'synced'));
    // The sender is fine.
    a.send({ type: 'ping' });
    await a.next('pong');
    await a.close();
});

test('connections gone with a page read in flight, and a stop with syncs running, leave the server clean', async () => {
    // Under AddressSanitizer a page answered for a connection already freed would
    // abort the server: the stop below would not exit 0.
    for (let i = 0; i < 8; i++) {
        const c = await wsConnect(server, bob.access_token);
        await c.next('hello');
        await new Promise((resolve) => c.ws.send(JSON.stringify(syncAll()), resolve));
        c.ws.terminate();
        await c.closed;
    }
    const delivered0 = await metric('chatd_ws_deliveries_total');
    await Promise.all(Array.from({ length: 4 }, pausedSync));
    await waitFor(async () => (await metric('chatd_ws_deliveries_total')) > delivered0,
        { timeout: 30000, message: 'the replays began' });
    assert.equal(await server.stop(), 0, server.logs());
});
