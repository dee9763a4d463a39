// webhook-keepalive.test.mjs: chatd keeps its connection to a webhook receiver alive.
// Webhooks for several messages, one after the other, reach the receiver (HTTPS, a CA
// made for the test) over one TLS connection; when the receiver closes an idle
// connection, the next webhook still arrives, on a new one. A burst of webhooks (30
// messages for an offline member in one go, the receiver slow to answer) reaches it
// over at most 8 connections (notification's bound per origin), all of them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, api, registerAndLogin, uniqueName, tmpDir, waitFor } from './lib/harness.mjs';
import { makeCertificates, startReceiver } from './lib/push-receiver.mjs';

let certs, receiver, server, http, sender, bob, room;

const as = (u) => ({ token: u.access_token });

before(async () => {
    certs = makeCertificates(tmpDir('chatd-keepalive-'));
    receiver = await startReceiver(certs);
    receiver.server.keepAliveTimeout = 60000;   // the receiver keeps it; chatd decides
    server = await startServer({ config: `[notification]
ca_file = ${certs.caFile}
webhook_url = ${receiver.url('/hook')}
webhook_secret = keep-alive test
` });
    http = api(server);
    [sender, bob] = await Promise.all(['sender', 'bob'].map((n) => registerAndLogin(server, uniqueName(n))));
    const res = await http.post('/v1/rooms', { name: 'keep-alive', members: [bob.username] }, as(sender));
    assert.equal(res.status, 201, res.text);
    room = res.json.room;
});

after(async () => {
    await receiver?.close();
    if (server && server.exitStatus === null)
        assert.equal(await server.stop(), 0, server.logs());
});

/* Sends a message and waits for its webhook (bob is offline: no WebSocket). */
async function sendAndReceive(body) {
    const res = await http.post(`/v1/rooms/${room.id}/messages`, { body }, as(sender));
    assert.equal(res.status, 201, res.text);
    const id = res.json.message.id;
    return receiver.next((q) => q.path === '/hook' && JSON.parse(q.body).message.id === id);
}

test('webhooks for several messages share one kept-alive connection', async () => {
    const first = await sendAndReceive('keep-alive 0');
    for (let i = 1; i < 5; i++) {
        const r = await sendAndReceive(`keep-alive ${i}`);
        assert.equal(r.conn, first.conn, `webhook ${i} came on connection ${r.conn}`);
        assert.equal(r.headers.connection, undefined, 'no Connection: close');
    }
    assert.equal(receiver.connections, 1);
});

test('after the receiver closes an idle connection the next webhook arrives on a new one', async () => {
    const before = await sendAndReceive('before the close');
    receiver.server.closeIdleConnections();     // as a receiver ending idle ones does
    await waitFor(() => receiver.open === 0, { message: 'the receiver closed its connections' });
    const after = await sendAndReceive('after the close');
    assert.notEqual(after.conn, before.conn);
    assert.equal(receiver.open, 1);
    const m = await http.get('/metrics');
    const failed = m.text.split('\n').find((l) => l.startsWith('chatd_notifications_total{channel="webhook",result="failed"}'));
    assert.equal(Number(failed?.split(' ').pop() ?? 0), 0, 'no webhook failed');
});

test('a burst of webhooks reaches the receiver over at most 8 connections', async () => {
    const N = 30, BOUND = 8;
    const opened = receiver.connections;
    receiver.delayMs = 100;                     // slow enough that the burst piles up
    receiver.peakOpen = receiver.open;
    try {
        const sent = await Promise.all(Array.from({ length: N }, (_, i) =>
            http.post(`/v1/rooms/${room.id}/messages`, { body: `burst ${i}` }, as(sender))));
        const ids = new Set(sent.map((res) => {
            assert.equal(res.status, 201, res.text);
            return res.json.message.id;
        }));
        const got = await Promise.all([...ids].map((id) =>
            receiver.next((q) => q.path === '/hook' && JSON.parse(q.body).message.id === id)));
        assert.equal(got.length, N);
        assert.ok(receiver.peakOpen <= BOUND, `${receiver.peakOpen} connections open at once`);
        assert.ok(receiver.connections - opened <= BOUND,
            `${receiver.connections - opened} connections opened for ${N} webhooks`);
        assert.ok(new Set(got.map((r) => r.conn)).size <= BOUND);
    } finally {
        receiver.delayMs = 0;
    }
    const m = await http.get('/metrics');
    const failed = m.text.split('\n').find((l) => l.startsWith('chatd_notifications_total{channel="webhook",result="failed"}'));
    assert.equal(Number(failed?.split(' ').pop() ?? 0), 0, 'no webhook failed');
});
