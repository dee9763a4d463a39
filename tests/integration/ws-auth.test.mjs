// ws-auth.test.mjs: token expiry on a live WebSocket. With [auth] access_ttl = 10, a
// connection whose token expired is closed with 4001 once 60 s passed after exp
// without an "auth" frame; a connection that sent a newer token of the same user in
// time stays open. (Takes a little over 70 s: the 60 s grace is the contract.)
// Also the handshake on a raw socket: the 101 answer and the hello frame leave in one
// write, and a first frame sent in the same packet as the request is answered.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { createHash } from 'node:crypto';
import { startServer, api, registerAndLogin, uniqueName, wsConnect } from './lib/harness.mjs';

let server, alice;

before(async () => {
    server = await startServer({ config: '[auth]\naccess_ttl = 10\n[websocket]\nheartbeat_ms = 1000\n' });
    alice = await registerAndLogin(server, uniqueName('alice'));
});

after(async () => {
    if (server && server.exitStatus === null)
        await server.stop();
});

function expOf(token) {
    return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).exp;
}

test('an expired token not replaced closes with 4001 after the grace; a replaced one stays', { timeout: 120000 }, async () => {
    const exp = expOf(alice.access_token);
    const stale = await wsConnect(server, alice.access_token);
    const fresh = await wsConnect(server, alice.access_token);
    await Promise.all([stale.next('hello'), fresh.next('hello')]);

    // A newer token, a few seconds later, so its exp is later than the first one's.
    await new Promise((r) => setTimeout(r, 4000));
    const login = await api(server).post('/v1/auth/login', { username: alice.username, password: alice.password });
    const newExp = expOf(login.json.access_token);
    assert.ok(newExp > exp + 2, `${newExp} vs ${exp}`);
    fresh.send({ type: 'auth', access_token: login.json.access_token });
    const ok = await fresh.next('auth.ok');
    assert.equal(ok.expires_at, newExp * 1000);

    const { code } = await stale.closed;
    const closedAt = Date.now();
    assert.equal(code, 4001);
    assert.ok(closedAt >= (exp + 60) * 1000, `closed ${closedAt - (exp + 60) * 1000} ms early`);
    assert.ok(closedAt <= (exp + 60) * 1000 + 5000, `closed ${closedAt - (exp + 60) * 1000} ms late`);

    // the connection that replaced its token is alive
    fresh.send({ type: 'ping' });
    await fresh.next('pong');
    await fresh.close();
});

/** A masked client frame (payload < 126 bytes). */
function clientFrame(opcode, payload) {
    const body = Buffer.from(payload);
    const key = Buffer.from([9, 8, 7, 6]);
    for (let i = 0; i < body.length; i++)
        body[i] ^= key[i % 4];
    return Buffer.concat([Buffer.from([0x80 | opcode, 0x80 | body.length]), key, body]);
}

/** Server frames (unmasked) at the start of buf: [{opcode, payload}] and the rest. */
function serverFrames(buf) {
    const frames = [];
    while (buf.length >= 2) {
        let len = buf[1] & 0x7f, off = 2;
        if (len === 126) { if (buf.length < 4) break; len = buf.readUInt16BE(2); off = 4; }
        else if (len === 127) { if (buf.length < 10) break; len = Number(buf.readBigUInt64BE(2)); off = 10; }
        if (buf.length < off + len) break;
        frames.push({ opcode: buf[0] & 0x0f, payload: buf.subarray(off, off + len) });
        buf = buf.subarray(off + len);
    }
    return { frames, rest: buf };
}

test('the 101 answer and the hello frame come in one write; a frame sent with the request is answered', async () => {
    const user = await registerAndLogin(server, uniqueName('raw'));   // alice's token may be stale by now
    const key = 'dGhlIHNhbXBsZSBub25jZQ==';
    const accept = createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
    const sock = net.connect(server.port, server.host);
    const chunks = [];
    let all = Buffer.alloc(0);
    const got = new Promise((resolve, reject) => {
        const deadline = setTimeout(() => reject(new Error(`no pong: ${all.toString('latin1')}`)), 5000);
        sock.on('error', reject);
        sock.on('data', (d) => {
            chunks.push(d);
            all = Buffer.concat([all, d]);
            const end = all.indexOf('\r\n\r\n');
            if (end < 0)
                return;
            const { frames } = serverFrames(all.subarray(end + 4));
            if (frames.some((f) => f.opcode === 0xa)) {
                clearTimeout(deadline);
                resolve({ head: all.subarray(0, end).toString(), frames });
            }
        });
    });
    await new Promise((r) => sock.once('connect', r));
    // The request and a ping in one write: the ping waits in the HTTP side's buffer and
    // is handed over with the socket.
    sock.write(Buffer.concat([
        Buffer.from(`GET /v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
            `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n` +
            `Sec-WebSocket-Protocol: chatd.v1\r\nAuthorization: Bearer ${user.access_token}\r\n\r\n`),
        clientFrame(0x9, 'first')]));
    const { head, frames } = await got;
    sock.destroy();

    const lines = head.split('\r\n');
    assert.equal(lines[0], 'HTTP/1.1 101 Switching Protocols');
    assert.ok(lines.includes(`Sec-WebSocket-Accept: ${accept}`), head);
    assert.ok(lines.includes('Sec-WebSocket-Protocol: chatd.v1'), head);
    assert.ok(lines.some((l) => /^upgrade: websocket$/i.test(l)), head);

    assert.equal(frames[0].opcode, 0x1);
    assert.equal(JSON.parse(frames[0].payload).type, 'hello');
    const pong = frames.find((f) => f.opcode === 0xa);
    assert.equal(pong.payload.toString(), 'first');

    // They leave in one write, so the first read holds the whole 101 answer and the
    // whole hello (two quick writes may arrive together too: this checks no more).
    const first = chunks[0];
    const end = first.indexOf('\r\n\r\n');
    assert.ok(end > 0, 'the first read holds the 101 answer');
    const early = serverFrames(first.subarray(end + 4)).frames;
    assert.ok(early.length >= 1 && JSON.parse(early[0].payload).type === 'hello',
        'the first read holds the hello frame too');
});
