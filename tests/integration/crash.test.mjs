// crash.test.mjs: durability under kill -9. Several clients post in a loop, the server
// is killed with SIGKILL at a random moment and restarted on the same data directory:
// every message that was answered 201 is there with the same id and seq, each room's
// seq has no gap, and no message is stored twice. Posts that got no answer are retried
// with their client_msg_id after the restart and are then stored exactly once.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, api, registerAndLogin, uniqueName } from './lib/harness.mjs';

let server;

after(async () => {
    if (server && server.exitStatus === null)
        await server.stop();
});

const ROUNDS = 3;
const CLIENTS = 8;

async function allMessages(http, token, roomId) {
    const out = [];
    let after = 0;
    for (;;) {
        const res = await http.get(`/v1/rooms/${roomId}/messages?after=${after}&limit=200`, { token });
        assert.equal(res.status, 200, res.text);
        out.push(...res.json.messages);
        if (!res.json.has_more)
            return out;
        after = out[out.length - 1].seq;
    }
}

test('every acknowledged message survives kill -9, once, without seq gaps', { timeout: 120000 }, async () => {
    server = await startServer();
    let http = api(server);
    const users = await Promise.all(Array.from({ length: 4 }, (_, i) => registerAndLogin(server, uniqueName(`k${i}`))));
    const mk = async (owner, members) => {
        const res = await http.post('/v1/rooms', { name: uniqueName('crash'), members: members.map((u) => u.username) },
            { token: owner.access_token });
        assert.equal(res.status, 201, res.text);
        return res.json.room.id;
    };
    const rooms = [await mk(users[0], [users[1], users[2]]), await mk(users[2], [users[3]])];
    // Each client: a user and a room it belongs to.
    const clients = Array.from({ length: CLIENTS }, (_, i) => {
        const room = rooms[i % 2];
        const user = room === rooms[0] ? users[i % 3] : users[2 + (i % 2)];
        return { id: i, user, room, n: 0 };
    });

    const acked = new Map();      // client_msg_id -> message
    const unanswered = [];        // {client, cmid, body}

    for (let round = 0; round < ROUNDS; round++) {
        let stop = false;
        const loops = clients.map(async (c) => {
            while (!stop) {
                const cmid = `r${round}-c${c.id}-${c.n++}`;
                const body = `round ${round} client ${c.id} ${cmid}`;
                let res;
                try {
                    res = await http.post(`/v1/rooms/${c.room}/messages`, { body, client_msg_id: cmid },
                        { token: c.user.access_token, timeout: 5000 });
                } catch {
                    unanswered.push({ c, cmid, body });
                    return;          // the server is gone
                }
                assert.equal(res.status, 201, res.text);
                acked.set(cmid, res.json.message);
            }
        });
        const before = acked.size;
        await new Promise((r) => setTimeout(r, 300 + Math.random() * 900));
        await server.kill9();
        stop = true;
        await Promise.all(loops);
        assert.ok(acked.size > before, 'messages were acknowledged before the kill');

        console.log(`# round ${round}: ${acked.size - before} acknowledged, ${unanswered.length} unanswered at the kill`);
        await server.restart();
        http = api(server);

        // Retry what got no answer: stored at most once, whatever happened before.
        for (const u of unanswered.splice(0)) {
            const res = await http.post(`/v1/rooms/${u.c.room}/messages`, { body: u.body, client_msg_id: u.cmid },
                { token: u.c.user.access_token });
            assert.ok(res.status === 201 || res.status === 200, res.text);
            acked.set(u.cmid, res.json.message);
        }

        const seen = new Map();
        for (const room of rooms) {
            const owner = room === rooms[0] ? users[0] : users[2];
            const msgs = await allMessages(http, owner.access_token, room);
            msgs.forEach((m, i) => assert.equal(m.seq, i + 1, `room ${room}: seq ${m.seq} at position ${i + 1}`));
            for (const m of msgs) {
                assert.ok(!seen.has(m.client_msg_id), `client_msg_id ${m.client_msg_id} stored twice`);
                seen.set(m.client_msg_id, m);
            }
            const show = await http.get(`/v1/rooms/${room}`, { token: owner.access_token });
            assert.equal(show.json.room.last_seq, msgs.length, 'last_seq matches the rows');
        }
        for (const [cmid, m] of acked) {
            const got = seen.get(cmid);
            assert.ok(got, `acknowledged message ${cmid} is missing after the crash`);
            assert.deepEqual(got, m);
        }
        assert.equal(seen.size, acked.size, 'nothing stored that was never acknowledged or retried');
    }
});

test('SIGTERM under load: exit 0, every answered message stored, the rest refused cleanly', { timeout: 60000 }, async () => {
    const srv = await startServer();
    try {
        let http = api(srv);
        const u = await registerAndLogin(srv, uniqueName('term'));
        const room = (await http.post('/v1/rooms', { name: 'term' }, { token: u.access_token })).json.room;
        const acked = new Map();
        let stop = false, refused = 0;
        const loops = Array.from({ length: 8 }, async (_, c) => {
            for (let i = 0; !stop; i++) {
                const cmid = `t${c}-${i}`;
                let res;
                try {
                    res = await http.post(`/v1/rooms/${room.id}/messages`, { body: cmid, client_msg_id: cmid },
                        { token: u.access_token, timeout: 5000 });
                } catch {
                    return;          // the listener is gone
                }
                if (res.status === 201)
                    acked.set(cmid, res.json.message);
                else {
                    assert.equal(res.status, 503, res.text);
                    refused++;
                }
            }
        });
        await new Promise((r) => setTimeout(r, 300 + Math.random() * 500));
        const code = await srv.stop('SIGTERM');
        stop = true;
        await Promise.all(loops);
        assert.equal(code, 0, srv.logs());
        console.log(`# ${acked.size} acknowledged before the drain, ${refused} refused during it`);
        assert.ok(acked.size > 0, "messages were acknowledged before the drain");

        await srv.restart();
        http = api(srv);
        const res = await http.get(`/v1/rooms/${room.id}/messages?after=0&limit=200`, { token: u.access_token });
        const all = [...res.json.messages];
        let after = all.length ? all[all.length - 1].seq : 0;
        for (let more = res.json.has_more; more;) {
            const page = await http.get(`/v1/rooms/${room.id}/messages?after=${after}&limit=200`, { token: u.access_token });
            all.push(...page.json.messages);
            after = all[all.length - 1].seq;
            more = page.json.has_more;
        }
        all.forEach((m, i) => assert.equal(m.seq, i + 1));
        const byId = new Map(all.map((m) => [m.client_msg_id, m]));
        assert.equal(byId.size, all.length, 'no message stored twice');
        for (const [cmid, m] of acked)
            assert.deepEqual(byId.get(cmid), m, `acknowledged ${cmid} is stored`);
    } finally {
        if (srv.exitStatus === null)
            await srv.stop();
    }
});
