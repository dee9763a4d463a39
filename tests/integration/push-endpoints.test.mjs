// push-endpoints.test.mjs: a push endpoint is a URL a user chooses, and chatd connects
// to it. Endpoints on loopback, private, link-local and other non-public addresses are
// refused when subscribing (400) and, for subscriptions already stored, when connecting:
// the address the name resolved to is judged, and nothing connects. [notification]
// allow_private_endpoints = yes lets an operator use a push service on its own network.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { writeFileSync, readFileSync } from 'node:fs';
import { startServer, api, registerAndLogin, uniqueName, waitFor, assertApiError, DEFAULT_CONFIG }
    from './lib/harness.mjs';
import { makeSubscription } from './lib/push-receiver.mjs';

const as = (u) => ({ token: u.access_token });
const servers = [];
after(async () => {
    for (const s of servers)
        if (s.exitStatus === null)
            assert.equal(await s.stop(), 0, s.logs());
});

async function start(config = '') {
    const s = await startServer({ config });
    servers.push(s);
    return s;
}

const HOSTILE = [
    'https://127.0.0.1:22/', 'https://127.0.0.1/x', 'https://127.1/', 'https://0.0.0.0/',
    'https://169.254.169.254/latest/meta-data/', 'https://10.0.0.1/', 'https://172.16.5.4/',
    'https://192.168.1.1/', 'https://100.64.0.1/', 'https://[::1]/', 'https://[::]/',
    'https://[fe80::1]/', 'https://[fd00::1]/', 'https://[ff02::1]/', 'https://[::ffff:127.0.0.1]/',
    'https://[::ffff:7f00:1]/', 'https://[64:ff9b::a9fe:a9fe]/', 'https://[2002:7f00:1::]/',
    'https://[fe80::1%25eth0]/', 'https://224.0.0.1/', 'https://255.255.255.255/',
    'https://192.0.2.1/', 'https://198.18.0.1/', 'https://localhost/', 'https://LocalHost./',
    'https://foo.localhost/', 'https://2130706433/', 'https://0x7f000001/', 'https://0177.0.0.1/',
    'https://017700000001/', 'https://printer.local/', 'https://push.example.com:0/',
    'https://push.example.com:65536/', 'https://push.example.com:+443/', 'https://push.example.com:/',
    'https://push.example.com:44x/', 'https://push..example.com/', 'https://push.example.123/',
    'https://[push.example.com]/', 'https://[v1.x]/',
];

test('hostile push endpoints are refused with 400 and a reason; public ones are stored', async () => {
    const srv = await start();
    const h = api(srv);
    const user = await registerAndLogin(srv, uniqueName('ssrf'));
    const keys = makeSubscription('https://x.invalid/').json.keys;
    for (const endpoint of HOSTILE) {
        const res = await h.post('/v1/push/subscriptions', { endpoint, keys }, as(user));
        assertApiError(res, 400, 'invalid_argument');
        assert.match(res.json.error.message, /endpoint/, `${endpoint}: ${res.text}`);
    }
    const loop = await h.post('/v1/push/subscriptions', { endpoint: 'https://127.0.0.1:22/', keys },
        as(user));
    assert.match(loop.json.error.message, /127\.0\.0\.1 is a loopback address/);
    const meta = await h.post('/v1/push/subscriptions',
        { endpoint: 'https://[::ffff:169.254.169.254]/', keys }, as(user));
    assert.match(meta.json.error.message, /link-local/);
    const lo6 = await h.post('/v1/push/subscriptions', { endpoint: 'https://[::1]/', keys }, as(user));
    assert.match(lo6.json.error.message, /::1 is a loopback address/);
    for (const endpoint of ['https://push.example.com/ep/1', 'https://fcm.googleapis.com:443/fcm/send/x',
        'https://8.8.8.8/x', 'https://[2606:4700:4700::1111]/x']) {
        const res = await h.post('/v1/push/subscriptions', { endpoint, keys }, as(user));
        assert.equal(res.status, 201, `${endpoint}: ${res.text}`);
    }
});

// A TCP listener that only counts the connections it gets.
async function countingListener() {
    const l = { count: 0 };
    l.server = net.createServer((sock) => { l.count++; sock.destroy(); });
    await new Promise((resolve) => l.server.listen(0, '127.0.0.1', resolve));
    l.port = l.server.address().port;
    l.close = () => new Promise((resolve) => l.server.close(resolve));
    return l;
}

async function pushFailures(srv) {
    const text = (await api(srv).get('/metrics')).text;
    const line = text.split('\n').find((l) =>
        l.startsWith('chatd_notifications_total{channel="push",result="failed"}'));
    return line ? Number(line.split(' ').pop()) : 0;
}

test('subscriptions stored while private endpoints were allowed never connect once they are not', async () => {
    const listener = await countingListener();
    try {
        const allow = `[notification]\nallow_private_endpoints = yes\nmax_attempts = 1\n`;
        const srv = await start(allow);
        const h = api(srv);
        const [sender, rcpt] = await Promise.all(['s', 'r'].map((n) => registerAndLogin(srv, uniqueName(n))));
        // By address and by a name that resolves to loopback.
        for (const endpoint of [`https://127.0.0.1:${listener.port}/a`, `https://localhost:${listener.port}/b`]) {
            const sub = makeSubscription(endpoint);
            assert.equal((await h.post('/v1/push/subscriptions', sub.json, as(rcpt))).status, 201);
        }
        const room = await h.post('/v1/rooms', { name: 'ssrf', members: [rcpt.username] }, as(sender));
        assert.equal(room.status, 201, room.text);
        const post = (body) => h.post(`/v1/rooms/${room.json.room.id}/messages`, { body }, as(sender));
        // Allowed: chatd connects (and the handshake fails: the listener speaks no TLS).
        assert.equal((await post('allowed')).status, 201);
        await waitFor(() => listener.count >= 2, { message: 'both endpoints reached', timeout: 10000 });
        await waitFor(async () => (await pushFailures(srv)) >= 2, { message: 'both pushes done', timeout: 10000 });

        await srv.stop();
        writeFileSync(srv.configPath, readFileSync(srv.configPath, 'utf8').replace(
            'allow_private_endpoints = yes', 'allow_private_endpoints = no'));
        await srv.restart();
        listener.count = 0;
        const before = await pushFailures(srv);
        assert.equal((await post('refused')).status, 201);
        await waitFor(async () => (await pushFailures(srv)) >= before + 2,
            { message: 'both pushes refused', timeout: 10000 });
        assert.equal(listener.count, 0, 'no connection to a loopback endpoint');
        assert.match(srv.logs(), /127\.0\.0\.1 resolves to 127\.0\.0\.1, a loopback address: not a public address/);
        assert.match(srv.logs(), /localhost resolves to (127\.0\.0\.1|::1), a loopback address: not a public address/);
        // The owner sees that the host is not public, not what chatd's resolver said
        // it is (a name of the operator's network would give its addresses away).
        const subs = await waitFor(async () => {
            const list = (await h.get('/v1/push/subscriptions', as(rcpt))).json.subscriptions;
            return list.every((x) => /public/.test(x.last_error ?? '')) && list;
        }, { message: 'both refusals recorded', timeout: 10000 });
        for (const x of subs)
            assert.doesNotMatch(x.last_error, /127\.0\.0\.1 |::1|loopback|resolves to/, x.last_error);
    } finally {
        await listener.close();
    }
});

test('allow_private_endpoints = yes accepts private endpoints when subscribing', async () => {
    const srv = await start('[notification]\nallow_private_endpoints = yes\n');
    const user = await registerAndLogin(srv, uniqueName('lan'));
    for (const endpoint of ['https://127.0.0.1:8443/p', 'https://10.1.2.3/p', 'https://push.internal/p']) {
        const res = await api(srv).post('/v1/push/subscriptions', makeSubscription(endpoint).json, as(user));
        assert.equal(res.status, 201, `${endpoint}: ${res.text}`);
    }
    // Ports stay checked either way.
    const bad = await api(srv).post('/v1/push/subscriptions',
        makeSubscription('https://127.0.0.1:99999/p').json, as(user));
    assertApiError(bad, 400, 'invalid_argument');
});

test('allow_private_endpoints other than yes or no stops the start, naming the key', async () => {
    const srv = await start();
    writeFileSync(srv.configPath, `${DEFAULT_CONFIG}\n[notification]\nallow_private_endpoints = maybe\n`);
    await srv.stop();
    await assert.rejects(srv.restart(), /exited before listening/);
    assert.match(srv.logs(), /allow_private_endpoints: expected yes or no/);
});
