// ws-limits.test.mjs: the caps on WebSocket connections held at once, per user
// ([limits] connections_per_user) and per client address (connections_per_address):
// the upgrade past them is refused with 429 rate_limited in the API's error format,
// and a connection that closed makes room again. Behind a trusted proxy the address is
// the one X-Forwarded-For names; an IPv6 address counts by its /64 there as for the
// connect rate (connects_per_s, connects_burst).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, registerAndLogin, wsConnect } from './lib/harness.mjs';
import { closeCodeOf, rawFrame, rawWs } from './lib/rawws.mjs';

const servers = [];
after(async () => {
    for (const s of servers) {
        if (s.exitStatus === null)
            await s.stop();
    }
});

async function start(config) {
    const s = await startServer({ config });
    servers.push(s);
    return s;
}

async function open(s, user, opts) {
    const c = await wsConnect(s, user.access_token, opts);
    await c.next('hello');
    return c;
}

async function refused(s, user, opts) {
    const err = await wsConnect(s, user.access_token, opts).then(
        (c) => { c.terminate(); return null; }, (e) => e);
    assert.ok(err, 'the upgrade went through');
    assert.equal(err.status, 429, `status ${err.status}: ${err.body}`);
    assert.equal(err.json?.error?.code, 'rate_limited', err.body);
    assert.match(err.json.error.message, /connections/);
    assert.ok(Number(err.headers['retry-after']) >= 1, JSON.stringify(err.headers));
    return err;
}

test('past connections_per_user the upgrade gets 429; a close makes room', { timeout: 30000 }, async () => {
    const s = await start('[limits]\nconnections_per_user = 3');
    const [alice, bob] = await Promise.all([registerAndLogin(s), registerAndLogin(s)]);
    const conns = [];
    for (let i = 0; i < 3; i++)
        conns.push(await open(s, alice));
    const err = await refused(s, alice);
    assert.match(err.json.error.message, /user/);
    const other = await open(s, bob);      // another user's count is its own
    await conns.pop().close();
    conns.push(await open(s, alice));      // room again
    await refused(s, alice);
    for (const c of [...conns, other])
        await c.close();
});

test('past connections_per_address the upgrade gets 429 whoever the user; a close makes room', { timeout: 30000 }, async () => {
    const s = await start('[limits]\nconnections_per_address = 3');
    const [alice, bob] = await Promise.all([registerAndLogin(s), registerAndLogin(s)]);
    const conns = [await open(s, alice), await open(s, alice), await open(s, bob)];
    const err = await refused(s, bob);
    assert.match(err.json.error.message, /address/);
    await conns.shift().close();
    conns.push(await open(s, bob));
    await refused(s, alice);
    for (const c of conns)
        await c.close();
});

test('a connection the server closed (protocol error) frees its slot too', { timeout: 30000 }, async () => {
    const s = await start('[limits]\nconnections_per_user = 1\nconnections_per_address = 1');
    const alice = await registerAndLogin(s);
    const c = await rawWs(s, alice.access_token);
    await refused(s, alice);
    c.sock.write(rawFrame(0x89, 126, [0, 126], Buffer.alloc(126)));   // a ping over 125 bytes
    const frames = await c.until((fr) => closeCodeOf(fr) !== undefined, 10000, 'the close frame');
    assert.equal(closeCodeOf(frames), 1002);
    const again = await open(s, alice);
    await again.close();
    c.sock.destroy();
});

test('with trust_proxy the address counted is the forwarded one', { timeout: 30000 }, async () => {
    const s = await start('[server]\ntrust_proxy = yes\n[limits]\nconnections_per_address = 2');
    const alice = await registerAndLogin(s);
    const via = (ip) => ({ headers: { 'X-Forwarded-For': ip } });
    const conns = [await open(s, alice, via('203.0.113.7')), await open(s, alice, via('203.0.113.7'))];
    await refused(s, alice, via('203.0.113.7'));
    conns.push(await open(s, alice, via('203.0.113.8')));   // another client behind the proxy
    for (const c of conns)
        await c.close();
});

test('with trust_proxy an IPv6 /64 is one address to connections_per_address', { timeout: 30000 }, async () => {
    const s = await start('[server]\ntrust_proxy = yes\n[limits]\nconnections_per_address = 2');
    const alice = await registerAndLogin(s);
    const via = (ip) => ({ headers: { 'X-Forwarded-For': ip } });
    const conns = [await open(s, alice, via('2001:db8:5:5::1')),
                   await open(s, alice, via('2001:db8:5:5:abcd::2'))];
    const err = await refused(s, alice, via('2001:db8:5:5:ffff:ffff:ffff:ffff'));
    assert.match(err.json.error.message, /address/);
    conns.push(await open(s, alice, via('2001:db8:5:6::1')));   // another /64
    conns.push(await open(s, alice, via('::ffff:203.0.113.30')));
    conns.push(await open(s, alice, via('203.0.113.30')));
    await refused(s, alice, via('::ffff:203.0.113.30'));
    await conns.shift().close();                                 // the /64 has room again
    conns.push(await open(s, alice, via('2001:db8:5:5::99')));
    for (const c of conns)
        await c.close();
});

test('with trust_proxy a request without X-Forwarded-For counts as the proxy\'s address', { timeout: 30000 }, async () => {
    const s = await start('[server]\ntrust_proxy = yes\n[limits]\nconnections_per_address = 2');
    const alice = await registerAndLogin(s);
    const conns = [await open(s, alice), await open(s, alice)];        // both 127.0.0.1
    const err = await refused(s, alice);
    assert.match(err.json.error.message, /address/);
    conns.push(await open(s, alice, { headers: { 'X-Forwarded-For': '203.0.113.9' } }));
    for (const c of conns)
        await c.close();
});

test('with trust_proxy an IPv6 /64 shares one connects_burst', { timeout: 30000 }, async () => {
    // A token every 1000 s: the burst is all there is while the test runs.
    const s = await start('[server]\ntrust_proxy = yes\n[limits]\nconnects_per_s = 0.001\nconnects_burst = 3');
    const alice = await registerAndLogin(s);
    const via = (ip) => ({ headers: { 'X-Forwarded-For': ip } });
    const conns = [];
    for (let i = 1; i <= 3; i++)
        conns.push(await open(s, alice, via(`2001:db8:9:9::${i}`)));
    for (const ip of ['2001:db8:9:9::4', '2001:db8:9:9:8000::1']) {
        const err = await wsConnect(s, alice.access_token, via(ip)).then(
            (c) => { c.terminate(); return null; }, (e) => e);
        assert.ok(err, `the upgrade from ${ip} went through`);
        assert.equal(err.status, 429, `status ${err.status}: ${err.body}`);
        assert.equal(err.json?.error?.code, 'rate_limited', err.body);
        assert.ok(Number(err.headers['retry-after']) >= 1, JSON.stringify(err.headers));
    }
    conns.push(await open(s, alice, via('2001:db8:9:a::1')));   // another /64
    for (const c of conns)
        await c.close();
});

test('a user\'s connections count together whatever address they come from', { timeout: 30000 }, async () => {
    const s = await start('[server]\ntrust_proxy = yes\n[limits]\nconnections_per_user = 2');
    const alice = await registerAndLogin(s);
    const via = (ip) => ({ headers: { 'X-Forwarded-For': ip } });
    const conns = [await open(s, alice, via('203.0.113.1')), await open(s, alice, via('198.51.100.2'))];
    const err = await refused(s, alice, via('192.0.2.3'));
    assert.match(err.json.error.message, /user/);
    for (const c of conns)
        await c.close();
});
