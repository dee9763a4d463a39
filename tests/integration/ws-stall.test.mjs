// ws-stall.test.mjs: frames and messages left incomplete on purpose. A connection
// holds what it actually sent of a message, not what the frame header announced, and
// one whose open frame or message gets no byte of it for a heartbeat period is closed
// with 4002 (pings between fragments do not count), while a slow sender that keeps
// sending is not.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startServer, registerAndLogin, api } from './lib/harness.mjs';
import { closeCodeOf, frame, parseFrames, rawFrame, rawWs, withDeadline } from './lib/rawws.mjs';

const instrumented = Boolean(process.env.ASAN_OPTIONS || process.env.CHATD_WRAPPER);
// Under a wrapper (valgrind) the server's loop can block for a second: a longer period
// keeps a late read from looking like a stall.
const HEARTBEAT_MS = process.env.CHATD_WRAPPER ? 5000 : 1000;
let server, user;

before(async () => {
    server = await startServer({ config: `[websocket]\nheartbeat_ms = ${HEARTBEAT_MS}\n` });
    user = await registerAndLogin(server);
});

after(async () => {
    if (server && server.exitStatus === null)
        await server.stop();
});

/** Waits for the close frame; returns its code and how long it took from `since`. */
async function closeCode(c, since) {
    const frames = await c.until((fr) => closeCodeOf(fr) !== undefined, 20 * HEARTBEAT_MS, 'a close frame');
    return { code: closeCodeOf(frames), ms: Date.now() - since };
}

test('a frame stalled halfway is closed with 4002 after a heartbeat period', { timeout: 60000 }, async () => {
    const c = await rawWs(server, user.access_token);
    const t0 = Date.now();
    c.sock.write(rawFrame(0x81, 126, [0x03, 0xe8], 'x'.repeat(10)));   // 10 of 1000 bytes
    const { code, ms } = await closeCode(c, t0);
    assert.equal(code, 4002);
    assert.ok(ms >= HEARTBEAT_MS - 50, `closed after ${ms} ms`);
    c.sock.destroy();
});

test('a fragmented message kept open with pings between fragments is closed with 4002', { timeout: 60000 }, async () => {
    const c = await rawWs(server, user.access_token);
    const t0 = Date.now();
    c.sock.write(frame(1, '{"type":', { fin: false }));
    // Pings keep the connection from being silent (4000) but bring the message no byte.
    const pinger = setInterval(() => c.sock.write(frame(9, 'hb')), HEARTBEAT_MS / 5);
    try {
        const { code } = await closeCode(c, t0);
        assert.equal(code, 4002);
    } finally {
        clearInterval(pinger);
    }
    assert.ok(parseFrames(c.data()).some((f) => f.opcode === 10), 'the pings were answered meanwhile');
    c.sock.destroy();
});

test('a message trickling in over several periods, a byte at a time, is served', { timeout: 60000 }, async () => {
    const c = await rawWs(server, user.access_token);
    const bytes = frame(1, '{"type":"ping"}');
    let i = 0;
    const trickle = setInterval(() => {
        if (i < bytes.length)
            c.sock.write(bytes.subarray(i, ++i));
    }, HEARTBEAT_MS / 4);   // 21 bytes over about 5 periods
    try {
        const frames = await c.until((fr) => fr.some((f) => f.opcode === 1 && f.payload.includes('"pong"')) ||
            closeCodeOf(fr) !== undefined, 30 * HEARTBEAT_MS, 'the pong');
        assert.equal(closeCodeOf(frames), undefined, 'closed while it was still sending');
    } finally {
        clearInterval(trickle);
    }
    c.sock.destroy();
});

function vmData() {
    return Number(/VmData:\s+(\d+) kB/.exec(readFileSync(`/proc/${server.proc.pid}/status`, 'utf8'))[1]) * 1024;
}

test('a frame announcing 64 KiB holds what was sent of it, not 64 KiB', { timeout: 60000 }, async (t) => {
    const N = 200;
    const idle = [], stalled = [];
    for (let i = 0; i < N; i++)
        idle.push(await rawWs(server, user.access_token));
    await api(server).get('/healthz');
    const before = vmData();
    for (let i = 0; i < N; i++) {
        const c = await rawWs(server, user.access_token);
        c.sock.write(rawFrame(0x81, 127, [0, 0, 0, 0, 0, 1, 0, 0], 'x'));   // 1 of 65536 bytes
        stalled.push(c);
    }
    // A frame after the partial ones, on a connection of its own: its pong says the
    // server's loop has come round since the last partial frame was written.
    const probe = await rawWs(server, user.access_token);
    probe.sock.write(frame(1, '{"type":"ping"}'));
    await probe.until((fr) => fr.some((f) => f.opcode === 1 && f.payload.includes('"pong"')), 10000, 'probe pong');
    const perConn = (vmData() - before) / N;
    t.diagnostic(`memory per stalled connection: ${(perConn / 1024).toFixed(1)} KiB (heap and mappings)`);
    if (!instrumented)
        assert.ok(perConn < 32 * 1024, `${(perConn / 1024).toFixed(1)} KiB per stalled connection`);
    for (const c of [...idle, ...stalled, probe])
        c.sock.destroy();
    await withDeadline(Promise.all(stalled.map((c) => c.ended)), 10000, 'sockets closed');
});
