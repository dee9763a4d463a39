// ws-protocol.test.mjs: frames no WebSocket library would send, through a raw socket
// upgraded by hand. Each protocol error gets a close frame with 1002 before the TCP
// connection ends (wslay catches most of these in its frame layer, where it gives up
// on the stream), and a pong answering a ping sent between two fragments of a message
// goes out before the reply to that message.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import net from 'node:net';
import { startServer, registerAndLogin, wsConnect } from './lib/harness.mjs';

let server, user;

before(async () => {
    server = await startServer();
    user = await registerAndLogin(server);
});

after(async () => {
    if (server && server.exitStatus === null)
        await server.stop();
});

function withDeadline(promise, ms, what) {
    let t;
    return Promise.race([promise, new Promise((_, rej) => {
        t = setTimeout(() => rej(new Error(`${what}: not within ${ms} ms`)), ms);
    })]).finally(() => clearTimeout(t));
}

/** A raw socket after the 101: {sock, data(): bytes after the 101, ended: promise}. */
async function rawWs(token) {
    const sock = net.connect(server.port, server.host);
    let buf = Buffer.alloc(0);
    sock.on('data', (d) => { buf = Buffer.concat([buf, d]); });
    sock.on('error', () => {});
    const ended = new Promise((resolve) => sock.on('close', resolve));
    await withDeadline(new Promise((resolve, reject) => {
        sock.once('connect', resolve);
        sock.once('error', reject);
    }), 10000, 'connect');
    sock.write('GET /v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        `Sec-WebSocket-Key: ${crypto.randomBytes(16).toString('base64')}\r\n` +
        `Sec-WebSocket-Version: 13\r\nAuthorization: Bearer ${token}\r\n\r\n`);
    await withDeadline(new Promise((resolve) => {
        const check = () => { if (buf.includes('\r\n\r\n')) { sock.off('data', check); resolve(); } };
        sock.on('data', check);
        check();
    }), 10000, '101');
    const headEnd = buf.indexOf('\r\n\r\n') + 4;
    assert.match(buf.subarray(0, headEnd).toString('latin1'), /^HTTP\/1\.1 101 /);
    return { sock, ended, data: () => buf.subarray(headEnd) };
}

/** A masked client frame with the length field given as raw bytes (any form, wrong ones
 * included): b0 the first byte, len7 the 7-bit length, ext the extended length bytes. */
function rawFrame(b0, len7, ext, payload) {
    const key = Buffer.from([0x11, 0x22, 0x33, 0x44]);
    const body = Buffer.from(payload);
    for (let i = 0; i < body.length; i++)
        body[i] ^= key[i % 4];
    return Buffer.concat([Buffer.from([b0, 0x80 | len7, ...ext]), key, body]);
}

function frame(opcode, payload, { fin = true } = {}) {
    const len = Buffer.byteLength(payload);
    assert.ok(len < 126);
    return rawFrame((fin ? 0x80 : 0) | opcode, len, [], payload);
}

/** Server frames in buf: [{opcode, payload}]; with whole, throws on a partial frame at the end. */
function parseFrames(buf, whole = false) {
    const frames = [];
    let off = 0;
    while (buf.length - off >= 2) {
        let len = buf[off + 1] & 0x7f, h = 2;
        if (len === 126) { len = buf.readUInt16BE(off + 2); h = 4; }
        else if (len === 127) { len = Number(buf.readBigUInt64BE(off + 2)); h = 10; }
        if (buf.length - off < h + len)
            break;
        frames.push({ opcode: buf[off] & 0x0f, payload: buf.subarray(off + h, off + h + len) });
        off += h + len;
    }
    if (whole)
        assert.equal(off, buf.length, `bytes after the last whole frame: ${buf.subarray(off).toString('hex')}`);
    return frames;
}

/** Sends bytes on a fresh connection, waits for TCP to end, returns what came before. */
async function closeAfter(bytes) {
    const c = await rawWs(user.access_token);
    c.sock.write(bytes);
    await withDeadline(c.ended, 10000, 'the server ends the connection');
    const frames = parseFrames(c.data(), true);
    const last = frames[frames.length - 1];
    assert.ok(last && last.opcode === 8, `a close frame last; got opcodes ${frames.map((f) => f.opcode)}`);
    assert.ok(last.payload.length >= 2, `close payload ${last.payload.toString('hex')}`);
    return last.payload.readUInt16BE(0);
}

const hostile = [
    ['a ping of 126 bytes', rawFrame(0x89, 126, [0, 126], Buffer.alloc(126, 'a'))],
    ['a ping without FIN', rawFrame(0x09, 1, [], 'a')],
    ['a pong without FIN', rawFrame(0x0a, 1, [], 'a')],
    ['a 64-bit length with its top bit set', rawFrame(0x81, 127, [0x80, 0, 0, 0, 0, 0, 0, 2], '{}')],
    ['a 16-bit length under 126', rawFrame(0x81, 126, [0, 2], '{}')],
    ['a 64-bit length under 65536', rawFrame(0x81, 127, [0, 0, 0, 0, 0, 0, 0, 2], '{}')],
    ['a close with a reason making 126 bytes',
        rawFrame(0x88, 126, [0, 126], Buffer.concat([Buffer.from([0x03, 0xe8]), Buffer.alloc(124, 'r')]))],
    ['a close with a 1-byte payload', rawFrame(0x88, 1, [], Buffer.from([0x03]))],
];

for (const [what, bytes] of hostile) {
    test(`${what} gets a 1002 close frame before the TCP connection ends`, { timeout: 30000 }, async () => {
        assert.equal(await closeAfter(bytes), 1002);
    });
}

test('a pong answering a ping between fragments goes out before the reply to the message', { timeout: 30000 }, async () => {
    const c = await rawWs(user.access_token);
    const text = JSON.stringify({ type: 'ping' });
    c.sock.write(Buffer.concat([
        frame(1, text.slice(0, 5), { fin: false }),
        frame(9, 'between'),
        frame(0, text.slice(5)),
        frame(9, 'after'),
    ]));
    const replyOf = (frames) => frames.findIndex((f) => f.opcode === 1 && f.payload.includes('"pong"'));
    await withDeadline(new Promise((resolve) => {
        const check = () => {
            const frames = parseFrames(c.data());
            if (frames.filter((f) => f.opcode === 10).length >= 2 && replyOf(frames) >= 0) {
                c.sock.off('data', check);
                resolve();
            }
        };
        c.sock.on('data', check);
        check();
    }), 10000, 'two pongs and the reply');
    const frames = parseFrames(c.data()).filter((f) => f.opcode !== 1 || f.payload.includes('"pong"'));
    assert.deepEqual(frames.map((f) => (f.opcode === 10 ? `pong:${f.payload}` : 'reply')),
        ['pong:between', 'reply', 'pong:after']);
    c.sock.destroy();
});

test('the server is still serving after the hostile frames', { timeout: 30000 }, async () => {
    const ws = await wsConnect(server, user.access_token);
    await ws.next('hello');
    ws.send({ type: 'ping' });
    await ws.next('pong');
    await ws.close();
    assert.equal(server.exitStatus, null);
});
