// ws-caps-churn.test.mjs: the caps on connections open at once count each connection
// once and let it go once, whichever way it ends: closed by the client, cut off, closed
// by the server for a protocol error, bad UTF-8, a message too big, too many bad frames
// or a stalled frame, dropped during the handshake or failed by bytes sent with the
// request. After many rounds of that the gauge is back at 0 and exactly the cap can be
// opened again, from one user and one address.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import net from 'node:net';
import { startServer, registerAndLogin, wsConnect, api, waitFor } from './lib/harness.mjs';
import { frame, rawFrame, rawWs, withDeadline } from './lib/rawws.mjs';

const CAP = 6;
const ROUNDS = 8;
const HEARTBEAT_MS = process.env.CHATD_WRAPPER ? 5000 : 1000;
let server, user;

before(async () => {
    server = await startServer({ config: `[websocket]\nheartbeat_ms = ${HEARTBEAT_MS}\nmax_message_bytes = 256\n` +
        `[limits]\nconnections_per_user = ${CAP}\nconnections_per_address = ${CAP}\n` });
    user = await registerAndLogin(server);
});

after(async () => {
    if (server && server.exitStatus === null)
        await server.stop();
});

function upgradeRequest() {
    return 'GET /v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        `Sec-WebSocket-Key: ${crypto.randomBytes(16).toString('base64')}\r\n` +
        `Sec-WebSocket-Version: 13\r\nAuthorization: Bearer ${user.access_token}\r\n\r\n`;
}

/** A raw connection that sends bytes after its 101 and waits for the server to end it. */
async function serverEnds(bytes) {
    const c = await rawWs(server, user.access_token);
    c.sock.write(bytes);
    await withDeadline(c.ended, 20 * HEARTBEAT_MS, 'the server ends the connection');
}

/** Sends the upgrade request (and more) in one write; ends when TCP does. */
async function withRequest(extra, { hangUp = false } = {}) {
    const sock = net.connect(server.port, server.host);
    sock.on('error', () => {});
    sock.resume();   // read what comes, or the end is never seen
    const ended = new Promise((resolve) => sock.on('close', resolve));
    await new Promise((resolve) => sock.once('connect', resolve));
    sock.write(Buffer.concat([Buffer.from(upgradeRequest()), extra]));
    if (hangUp)
        sock.destroy();
    await withDeadline(ended, 20 * HEARTBEAT_MS, 'TCP ends');
}

const endings = {
    'closed by the client': async () => {
        const c = await wsConnect(server, user.access_token);
        await c.next('hello');
        await c.close();
    },
    'cut off by the client': async () => {
        const c = await wsConnect(server, user.access_token);
        await c.next('hello');
        await c.terminate();
    },
    'a protocol error (1002)': () => serverEnds(frame(0, 'x')),
    'bad UTF-8 (1007)': () => serverEnds(frame(1, Buffer.from([0xc3, 0x28]))),
    'a message too big (1009)': () => serverEnds(rawFrame(0x81, 126, [1, 0], Buffer.alloc(256 + 1, 'a'))),
    'too many bad frames (1008)': () => serverEnds(Buffer.concat(Array.from({ length: 12 }, () => frame(1, 'nope')))),
    'a stalled frame (4002)': () => serverEnds(rawFrame(0x81, 100, [], 'x')),
    'a bad frame sent with the request': () => withRequest(frame(0, 'x')),
    'a hang-up right after the request': () => withRequest(Buffer.alloc(0), { hangUp: true }),
};

async function openConns() {
    const m = await api(server).get('/metrics');
    return Number(/^chatd_ws_connections (\d+)$/m.exec(m.text)?.[1]);
}

test('the caps are back at their full size after connections end in every way, many times', { timeout: 300000 }, async () => {
    for (let round = 0; round < ROUNDS; round++) {
        // At most CAP at once: a refusal here would be a slot not let go.
        const names = Object.keys(endings);
        for (let i = 0; i < names.length; i += CAP) {
            await Promise.all(names.slice(i, i + CAP).map((n) => endings[n]().catch((e) => {
                throw new Error(`round ${round}, ${n}: ${e.message}`);
            })));
        }
    }
    await waitFor(async () => (await openConns()) === 0, { timeout: 20000, message: 'no connection open' });
    const conns = [];
    for (let i = 0; i < CAP; i++) {
        const c = await wsConnect(server, user.access_token);
        await c.next('hello');
        conns.push(c);
    }
    const err = await wsConnect(server, user.access_token).then((c) => { c.terminate(); return null; }, (e) => e);
    assert.equal(err?.status, 429, 'the one past the cap is refused');
    for (const c of conns)
        await c.close();
    assert.equal(server.exitStatus, null);
});
