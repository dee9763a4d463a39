// faults.test.mjs: the server under faults.
// - kill -9 under a mixed load of WebSocket and HTTP sends, ten times in a row on the same
//   data directory: after each restart every acknowledged message is there exactly once
//   with its id and seq, each room's seq has no gap, the dead-letter table keeps its rows
//   and `chatd dlq list` still works, and presence shows nobody online.
// - The disk fills up while the server runs (a small tmpfs as the data directory): sends
//   are refused with a clear error and never acked, the server stays up, and once space
//   returns a send is acked and stored. Skipped where tmpfs cannot be mounted.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import {
    startServer, api, registerAndLogin, uniqueName, wsConnect, waitFor, runChatd, freePort, tmpDir,
    sqliteOnly,
} from './lib/harness.mjs';

const servers = [];
const mounts = [];
after(async () => {
    for (const s of servers) {
        if (s.exitStatus === null)
            await s.stop().catch(() => s.kill9());
    }
    for (const m of mounts) {
        try { execFileSync('umount', ['-l', m]); } catch { /* already gone */ }
    }
});

async function allMessages(http, token, roomId) {
    const out = [];
    let afterSeq = 0;
    for (;;) {
        const res = await http.get(`/v1/rooms/${roomId}/messages?after=${afterSeq}&limit=200`, { token });
        assert.equal(res.status, 200, res.text);
        out.push(...res.json.messages);
        if (!res.json.has_more)
            return out;
        afterSeq = out[out.length - 1].seq;
    }
}

/** Checks the rooms against what was acked: once each, same id and seq, no seq gaps. */
async function checkStored(server, token, rooms, acked) {
    const http = api(server);
    for (const room of rooms) {
        const msgs = await allMessages(http, token, room);
        msgs.forEach((m, i) => assert.equal(m.seq, i + 1, `room ${room}: seq ${m.seq} at position ${i + 1}`));
        const byCmid = new Map();
        for (const m of msgs) {
            assert.ok(m.client_msg_id, `room ${room}: a message without client_msg_id: ${JSON.stringify(m)}`);
            assert.ok(!byCmid.has(m.client_msg_id), `room ${room}: ${m.client_msg_id} stored twice`);
            byCmid.set(m.client_msg_id, m);
        }
        for (const [cmid, a] of acked) {
            if (a.room_id !== room)
                continue;
            const m = byCmid.get(cmid);
            assert.ok(m, `acked ${cmid} (room ${room} seq ${a.seq}) is missing after the restart`);
            assert.equal(m.id, a.id, cmid);
            assert.equal(m.seq, a.seq, cmid);
        }
    }
}

const dlq = (srv, ...args) => runChatd(['dlq', ...args, '-c', srv.configPath, '--data-dir', srv.dataDir]);
const dlqIds = (out) => out.split('\n').map((l) => /^(\d+)\s/.exec(l)?.[1]).filter(Boolean);

test('ten kill -9 in a row under WebSocket and HTTP load lose no acked message', { timeout: 90000 }, async (t) => {
    const closed = await freePort();
    const server = await startServer({ config: `[notification]
webhook_url = http://127.0.0.1:${closed}/hook
webhook_secret = faults
max_attempts = 1
retry_base_ms = 10
` });
    servers.push(server);
    let http = api(server);
    const [alice, bob, carol] = await Promise.all(['a', 'b', 'c'].map((p) => registerAndLogin(server, uniqueName(p))));
    const mk = async (members) => {
        const r = await http.post('/v1/rooms', { name: uniqueName('k'), members: members.map((u) => u.username) },
            { token: alice.access_token });
        assert.equal(r.status, 201, r.text);
        return r.json.room.id;
    };
    // Carol never connects: each message in the first room is a webhook for her, to a
    // closed port, which fails its one attempt and becomes a dead letter.
    const rooms = [await mk([bob, carol]), await mk([bob])];
    const acked = new Map();   // client_msg_id -> {room_id, id, seq}
    const first = await http.post(`/v1/rooms/${rooms[0]}/messages`, { body: 'to the dead letters', client_msg_id: 'dl0' },
        { token: alice.access_token });
    assert.equal(first.status, 201, first.text);
    acked.set('dl0', first.json.message);
    const dlLine = await waitFor(async () => (await dlq(server, 'list')).stdout.split('\n')
        .find((l) => l.includes('notification.webhook')), { timeout: 10000, message: 'a dead letter' });
    const deadIds = dlqIds(dlLine);
    assert.equal(deadIds.length, 1, dlLine);

    const presenceRoute = (await http.get(`/v1/presence?user_ids=${bob.user.id}`, { token: carol.access_token })).status !== 404;
    let checkedOnline = false;
    let n = 0;
    for (let round = 0; round < 10; round++) {
        http = api(server);
        // Load: two WebSocket senders and two HTTP senders, each sending one after another.
        const wsConns = await Promise.all([alice, bob].map((u) => wsConnect(server, u.access_token)));
        await Promise.all(wsConns.map((c) => c.next('hello')));
        if (presenceRoute && !checkedOnline) {
            // Online is visible before the kill, so "offline" after it means something.
            await waitFor(async () => (await http.get(`/v1/presence?user_ids=${bob.user.id}`, { token: carol.access_token }))
                .json?.presence?.[0]?.status === 'online', { message: 'bob online' });
            checkedOnline = true;
        }
        let stop = false;
        const wsLoop = async (c, user, room) => {
            while (!stop) {
                const cmid = `r${round}w${user.user.id}n${n++}`;
                c.send({ type: 'send', room_id: room, body: `ws ${cmid}`, client_msg_id: cmid });
                let f;
                try {
                    f = await c.next((x) => x.client_msg_id === cmid, 5000);
                } catch {
                    return;   // the server died
                }
                if (f.type === 'error') {
                    assert.equal(f.code, 'unavailable', JSON.stringify(f));
                    continue;
                }
                assert.equal(f.type, 'ack', JSON.stringify(f));
                acked.set(cmid, f.message);
            }
        };
        const httpLoop = async (user, room) => {
            while (!stop) {
                const cmid = `r${round}h${user.user.id}n${n++}`;
                let r;
                try {
                    r = await http.post(`/v1/rooms/${room}/messages`, { body: `http ${cmid}`, client_msg_id: cmid },
                        { token: user.access_token, timeout: 5000 });
                } catch {
                    return;
                }
                assert.ok(r.status === 201 || r.status === 503, `${r.status} ${r.text}`);
                if (r.status === 201)
                    acked.set(cmid, r.json.message);
            }
        };
        const before = acked.size;
        const loops = [
            wsLoop(wsConns[0], alice, rooms[round % 2]), wsLoop(wsConns[1], bob, rooms[1]),
            httpLoop(alice, rooms[1]), httpLoop(bob, rooms[0]),
        ];
        // Kill once the load is going, at a moment that differs from round to round.
        await waitFor(() => acked.size >= before + 10 + 7 * round, { timeout: 10000, message: 'load acked' });
        await server.kill9();
        stop = true;
        await Promise.all(loops);
        for (const c of wsConns)
            c.terminate();
        await server.restart();
        http = api(server);
        await checkStored(server, alice.access_token, rooms, acked);
        const list = await dlq(server, 'list');
        assert.equal(list.code, 0, list.stderr);
        for (const id of deadIds)
            assert.ok(dlqIds(list.stdout).includes(id), `dead letter ${id} lost:\n${list.stdout}`);
        if (presenceRoute) {
            const p = await http.get(`/v1/presence?user_ids=${alice.user.id},${bob.user.id}`, { token: carol.access_token });
            assert.equal(p.status, 200, p.text);
            assert.equal(p.json.presence.length, 2, p.text);
            for (const e of p.json.presence)
                assert.equal(e.status, 'offline', `after the restart: ${p.text}`);
        }
    }
    assert.ok(acked.size > 100, `only ${acked.size} messages acked in ten rounds`);
    t.diagnostic(`${acked.size} messages acked over ten kills; presence checked: ${presenceRoute}`);
});

function tryMount(dir, size) {
    try {
        execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'pipe' });
        return null;
    } catch (e) {
        return String(e.stderr || e.message).trim();
    }
}

/** Fills the file system holding dir; returns the filler's path. */
function fill(dir) {
    const p = path.join(dir, 'filler');
    const fd = openSync(p, 'w');
    const chunk = Buffer.alloc(64 * 1024, 1);
    try {
        for (;;)
            writeSync(fd, chunk);
    } catch (e) {
        if (e.code !== 'ENOSPC')
            throw e;
    }
    try {   // the last few bytes
        for (;;)
            writeSync(fd, chunk, 0, 512);
    } catch { /* full */ }
    closeSync(fd);
    return p;
}

test('a full disk refuses sends with a clear error, never an ack, and recovers', { timeout: 60000, skip: sqliteOnly('fills the disk of data_dir, where only the SQLite database lives') }, async (t) => {
    const mnt = path.join(tmpDir('chatd-full-'), 'mnt');
    mkdirSync(mnt);
    const why = tryMount(mnt, '16m');
    if (why) {
        t.skip(`cannot mount a tmpfs here (${why})`);
        return;
    }
    mounts.push(mnt);
    const server = await startServer({ dataDir: path.join(mnt, 'data') });
    servers.push(server);
    const http = api(server);
    const [alice, bob] = await Promise.all(['a', 'b'].map((p) => registerAndLogin(server, uniqueName(p))));
    const room = (await http.post('/v1/rooms', { name: 'full', members: [bob.username] }, { token: alice.access_token })).json.room.id;
    const ws = await wsConnect(server, alice.access_token);
    await ws.next('hello');
    const acked = new Map();
    const pre = await http.post(`/v1/rooms/${room}/messages`, { body: 'before', client_msg_id: 'pre' }, { token: alice.access_token });
    assert.equal(pre.status, 201, pre.text);
    acked.set('pre', pre.json.message);
    const filler = fill(mnt);
    const body = 'x'.repeat(4000);

    // Send until the database can no longer grow; then some more, over both paths.
    let refusedHttp = 0, refusedWs = 0, i = 0, lastRefusal = '';
    const deadlineAt = Date.now() + 30000;
    while ((refusedHttp < 3 || refusedWs < 3) && Date.now() < deadlineAt && i < 5000) {
        const hc = `h${i++}`;
        const r = await http.post(`/v1/rooms/${room}/messages`, { body, client_msg_id: hc }, { token: alice.access_token });
        if (r.status === 201) {
            acked.set(hc, r.json.message);
        } else {
            assert.ok(r.status >= 500, `${r.status} ${r.text}`);
            assert.ok(['unavailable', 'internal'].includes(r.json?.error?.code), r.text);
            refusedHttp++;
            lastRefusal = `${r.status} ${r.text}`;
        }
        const wc = `w${i++}`;
        ws.send({ type: 'send', room_id: room, body, client_msg_id: wc });
        const f = await ws.next((x) => (x.type === 'ack' || x.type === 'error') && x.client_msg_id === wc, 10000);
        if (f.type === 'ack') {
            acked.set(wc, f.message);
        } else {
            assert.ok(['unavailable', 'internal'].includes(f.code), JSON.stringify(f));
            refusedWs++;
        }
    }
    assert.ok(refusedHttp >= 3 && refusedWs >= 3, `sends kept being acked on a full disk (${acked.size} acked)`);
    t.diagnostic(`full disk: ${acked.size} acked, then ${refusedHttp} HTTP and ${refusedWs} WebSocket sends refused (${lastRefusal})`);
    assert.equal((await http.get('/healthz')).status, 200);
    assert.equal(server.exitStatus, null, 'chatd exited on a full disk');

    // Space returns: a send is acked and stored again (the first tries may still fail
    // while the database recovers; each try is a new message).
    rmSync(filler);
    let back;
    await waitFor(async () => {
        const cmid = `after${i++}`;
        const r = await http.post(`/v1/rooms/${room}/messages`, { body: 'space is back', client_msg_id: cmid },
            { token: alice.access_token });
        if (r.status === 201) {
            acked.set(cmid, r.json.message);
            back = r.json.message;
        }
        return r.status === 201;
    }, { timeout: 10000, interval: 100, message: 'a send acked once space returned' });
    const wc = `wafter${i++}`;
    ws.send({ type: 'send', room_id: room, body: 'ws too', client_msg_id: wc });
    const f = await ws.next((x) => x.client_msg_id === wc, 10000);
    assert.equal(f.type, 'ack', JSON.stringify(f));
    acked.set(wc, f.message);
    assert.ok(back);
    await checkStored(server, alice.access_token, [room], acked);
    await ws.close();
    // And everything acked survives a restart.
    await server.stop();
    await server.restart();
    await checkStored(server, alice.access_token, [room], acked);
});
