// ws-read-slices.test.mjs: many connections sending at once, each with a backlog in
// the kernel: nothing is lost or reordered: every message is acked once, each
// connection's acks come in its sending order, and the room stores each connection's
// messages in that order. Every connection also receives all 10,000 broadcasts (about
// 3.5 MB); on a busy machine the client reads them slower than chatd writes, and the
// default 1 MiB send queue would close it with 1013 (the slow-consumer rule, tested
// elsewhere), so this server's queue is large.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, api, registerUsers, uniqueName, wsConnect, waitFor } from './lib/harness.mjs';

const WRAPPED = Boolean((process.env.CHATD_WRAPPER ?? '').trim());
const CONNS = WRAPPED ? 8 : 40;
const PER_CONN = WRAPPED ? 50 : 250;

let server, http, alice;

before(async () => {
    server = await startServer({
        config: '[websocket]\nsend_queue_bytes = 67108864\n' +
            '[limits]\nconnections_per_user = 100000\nconnections_per_address = 100000\n',
    });
    http = api(server);
    [alice] = await registerUsers(server, ['alice']);
});

after(async () => {
    if (server && server.exitStatus === null)
        await server.stop();
});

const as = (u) => ({ token: u.access_token });

test('a flood from many connections at once: every message acked once, in order per connection', async () => {
    const res = await http.post('/v1/rooms', { name: uniqueName('room'), members: [] }, as(alice));
    assert.equal(res.status, 201, res.text);
    const room = res.json.room;
    const conns = await Promise.all(Array.from({ length: CONNS }, async () => {
        const c = await wsConnect(server, alice.access_token);
        await c.next('hello');
        return c;
    }));
    // Everything written before any answer is read: each socket holds a backlog.
    const pad = 'x'.repeat(200);
    conns.forEach((c, k) => {
        for (let i = 0; i < PER_CONN; i++)
            c.send({ type: 'send', room_id: room.id, body: `c${k} m${i} ${pad}`, client_msg_id: `c${k}-${i}` });
    });
    const acks = (c) => c.frames.filter((f) => f.type === 'ack');
    await waitFor(() => conns.every((c) => acks(c).length >= PER_CONN),
        { timeout: 120000, message: 'every ack' });
    const seqs = new Set();
    conns.forEach((c, k) => {
        const got = acks(c);
        assert.equal(got.length, PER_CONN);
        got.forEach((a, i) => assert.equal(a.client_msg_id, `c${k}-${i}`));
        // stored in the order sent on this connection
        for (let i = 1; i < got.length; i++)
            assert.ok(got[i].message.seq > got[i - 1].message.seq, `c${k} seq order at ${i}`);
        got.forEach((a) => seqs.add(a.message.seq));
        assert.ok(!c.frames.some((f) => f.type === 'error'), JSON.stringify(c.frames.find((f) => f.type === 'error')));
    });
    assert.equal(seqs.size, CONNS * PER_CONN);
    await Promise.all(conns.map((c) => c.close()));
});
