// [database] durability: with full (the default) every acknowledged message was synced
// to the disk before its answer (a WebSocket ack, an HTTP 201) was written; with process
// nothing waits for the disk. Seen from the outside: chatd runs under strace, which
// records the WAL's writes and fsync/fdatasync and the writes to the clients' sockets in
// the order they happened.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { api, registerAndLogin, sqliteOnly, startServer, tmpDir, wsConnect } from './lib/harness.mjs';
import { stopTraced, straceWorks, tracedEnv } from './lib/strace.mjs';

const MESSAGES = 30;
const id = (i) => `dur-${String(i).padStart(3, '0')}`;
// SQLite stores the text as it is: the WAL page that holds the message shows it.
const body = (i) => `durable body ${i} end`;
const byHttp = (i) => i % 2 === 1;

/* Sends MESSAGES messages one by one, each after the previous answer, by WebSocket and
 * by HTTP in turn. Returns the WebSocket client's port and the trace. */
async function sendOneByOne(config) {
    const trace = path.join(tmpDir('chatd-fsync-'), 'trace.txt');
    const server = await startServer({
        config, env: tracedEnv(),
        // -s: a whole 4 KiB page of each WAL write, where the message's body is.
        wrapper: ['strace', '-f', '-qq', '-yy', '-s', '8192', '-o', trace,
            '-e', 'trace=fsync,fdatasync,pwrite64,write,writev,sendmsg,sendto'],
    });
    const alice = await registerAndLogin(server);
    const room = (await api(server).post('/v1/rooms', { name: 'durable', members: [] },
        { token: alice.access_token })).json.room;
    assert.ok(room, 'room created');
    const ws = await wsConnect(server, alice.access_token);
    const port = ws.ws._socket.localPort;
    for (let i = 0; i < MESSAGES; i++) {
        const msg = { body: body(i), client_msg_id: id(i) };
        if (byHttp(i)) {
            const res = await api(server).post(`/v1/rooms/${room.id}/messages`, msg,
                { token: alice.access_token });
            assert.equal(res.status, 201, res.text);
            continue;
        }
        ws.send({ type: 'send', room_id: room.id, ...msg });
        const ack = await ws.next('ack', 30000);
        assert.equal(ack.client_msg_id, id(i));
    }
    await ws.close();
    const st = await stopTraced(server, 'SIGTERM');
    assert.equal(st.code, 0, server.logs());
    return { port, lines: readFileSync(trace, 'utf8').split('\n') };
}

/*
 * For each message: how many syncs of the WAL completed between the WAL write that
 * holds it and its answer, a write to a client's socket (the ack on the WebSocket, or
 * the 201 on the HTTP connection, a new one per request). Counting from the WAL write,
 * not from the previous answer, is what tells a sync before the answer from one just
 * after it. A sync split by another thread's call shows as
 * "fdatasync(7</x/chatd.db-wal> <unfinished ...>" and completes at
 * "<... fdatasync resumed>".
 */
function walSyncsBeforeEachAnswer({ port, lines }) {
    const syncing = new Set();      // pids inside a WAL sync
    const counts = [];
    let since = 0, next = 0, written = false;
    const client = `->127.0.0.1:${port}]>`;
    const inWal = (call, i) => /^pwrite64\(\d+<[^>]*chatd\.db-wal>/.test(call) && call.includes(body(i));
    const isAnswer = (call, i) => call.includes(`\\"client_msg_id\\":\\"${id(i)}\\"`) &&
        (byHttp(i) ? call.includes('"HTTP/1.1 201 ')
            : call.includes(client) && call.includes('\\"type\\":\\"ack\\"'));
    for (const line of lines) {
        const m = /^(\d+)\s+(.*)$/.exec(line);
        if (!m || next >= MESSAGES)
            continue;
        const [, pid, call] = m;
        if (/^f(data)?sync\(\d+<[^>]*chatd\.db-wal>\)/.test(call)) {
            since++;
        } else if (/^f(data)?sync\(\d+<[^>]*chatd\.db-wal> <unfinished/.test(call)) {
            syncing.add(pid);
        } else if (/^<\.\.\. f(data)?sync resumed>/.test(call) && syncing.delete(pid)) {
            since++;
        } else if (inWal(call, next)) {
            written = true;
            since = 0;
        } else if (written && isAnswer(call, next)) {
            counts.push(since);
            written = false;
            next++;
        }
    }
    assert.equal(counts.length, MESSAGES, `every message was found in the trace, written to the WAL and then answered: ${counts.length}`);
    return counts;
}

describe('[database] durability', { skip: sqliteOnly('durability and the syncs of chatd.db-wal are SQLite\'s') || (straceWorks() ? false : 'needs strace (with ptrace allowed, no $CHATD_WRAPPER)') }, () => {
    it('full (the default): the WAL is synced before every answer', async (t) => {
        const counts = walSyncsBeforeEachAnswer(await sendOneByOne(''));
        t.diagnostic(`WAL syncs before each of ${MESSAGES} answers: ${counts.join(' ')}`);
        assert.deepEqual(counts.filter((n) => n < 1), [], `an answer with no sync before it: ${counts.join(' ')}`);
    });

    it('process: answers wait for no sync (what it risks is in docs/deploy.md)', async (t) => {
        const counts = walSyncsBeforeEachAnswer(await sendOneByOne('[database]\ndurability = process\n'));
        t.diagnostic(`WAL syncs before each of ${MESSAGES} answers: ${counts.join(' ')}`);
        // 30 small commits stay far below the checkpoint threshold: no sync at all.
        assert.equal(counts.reduce((a, b) => a + b, 0), 0, counts.join(' '));
    });
});
