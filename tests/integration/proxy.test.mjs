// [server] trust_proxy: behind a reverse proxy on loopback, per-address limits count
// the client named by the last X-Forwarded-For entry, not the proxy.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, request, uniqueName } from './lib/harness.mjs';

const servers = [];
after(() => Promise.all(servers.map((s) => s.stop())));

async function start(trust) {
    const s = await startServer({ config: `[server]\ntrust_proxy = ${trust}\n[limits]\nregistrations_per_min = 1\n` });
    servers.push(s);
    return s;
}

function register(server, xff) {
    return request(server, 'POST', '/v1/auth/register', {
        body: { username: uniqueName('px'), password: 'correct horse battery' },
        headers: xff ? { 'X-Forwarded-For': xff } : {},
    });
}

test('with trust_proxy = yes each forwarded client has its own registration budget', async () => {
    const s = await start('yes');
    assert.equal((await register(s, '203.0.113.7')).status, 201);
    assert.equal((await register(s, '203.0.113.8')).status, 201);
    const again = await register(s, '203.0.113.7');
    assert.equal(again.status, 429);
    assert.ok(Number(again.headers['retry-after']) >= 1);
    // Only the last entry counts: a client cannot choose its address by prepending one.
    assert.equal((await register(s, '198.51.100.1, 203.0.113.8')).status, 429);
});

test('with trust_proxy = no (the default) X-Forwarded-For is ignored', async () => {
    const s = await start('no');
    assert.equal((await register(s, '203.0.113.7')).status, 201);
    assert.equal((await register(s, '203.0.113.8')).status, 429);
});

test('a bad trust_proxy value stops the start naming the key', async () => {
    await assert.rejects(startServer({ config: '[server]\ntrust_proxy = maybe\n' }), /trust_proxy/);
});

test('a forwarded IPv6 address counts by its /64, an IPv4-mapped one as its IPv4 address', async () => {
    const s = await start('yes');
    assert.equal((await register(s, '2001:db8:77:1::1')).status, 201);
    // Other addresses of that /64, however written, share its budget.
    for (const xff of ['2001:db8:77:1::2', '2001:db8:77:1:ffff:ffff:ffff:fffe',
                       '2001:0DB8:0077:0001:0:0:0:3', '198.51.100.1, 2001:db8:77:1::4']) {
        const r = await register(s, xff);
        assert.equal(r.status, 429, `${xff}: ${r.status} ${r.text}`);
        assert.equal(r.json.error.code, 'rate_limited');
    }
    // Another /64 has its own.
    assert.equal((await register(s, '2001:db8:77:2::1')).status, 201);
    assert.equal((await register(s, '::ffff:203.0.113.20')).status, 201);
    assert.equal((await register(s, '203.0.113.20')).status, 429);
});
