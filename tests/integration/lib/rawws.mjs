// rawws.mjs: a WebSocket spoken by hand over a plain TCP socket, for frames no
// library would send (bad lengths, stalls, fragments with pings between them).
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import net from 'node:net';

export function withDeadline(promise, ms, what) {
    let t;
    return Promise.race([promise, new Promise((_, rej) => {
        t = setTimeout(() => rej(new Error(`${what}: not within ${ms} ms`)), ms);
    })]).finally(() => clearTimeout(t));
}

/** Upgrades a raw socket: {sock, ended (a promise of TCP close), data(): bytes after the 101}. */
export async function rawWs(server, token) {
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
    const c = { sock, ended, data: () => buf.subarray(headEnd) };
    /** Resolves once pred(frames) holds for the server frames received so far. */
    c.until = (pred, ms, what) => withDeadline(new Promise((resolve) => {
        const check = () => {
            if (pred(parseFrames(c.data()))) {
                sock.off('data', check);
                resolve(parseFrames(c.data()));
            }
        };
        sock.on('data', check);
        check();
    }), ms, what);
    return c;
}

/** A masked client frame with the length field given as raw bytes (any form, wrong ones
 * included): b0 the first byte, len7 the 7-bit length, ext the extended length bytes. */
export function rawFrame(b0, len7, ext, payload) {
    const key = Buffer.from([0x11, 0x22, 0x33, 0x44]);
    const body = Buffer.from(payload);
    for (let i = 0; i < body.length; i++)
        body[i] ^= key[i % 4];
    return Buffer.concat([Buffer.from([b0, 0x80 | len7, ...ext]), key, body]);
}

/** A masked client frame of under 126 bytes. */
export function frame(opcode, payload, { fin = true } = {}) {
    const len = Buffer.byteLength(payload);
    assert.ok(len < 126);
    return rawFrame((fin ? 0x80 : 0) | opcode, len, [], payload);
}

/** Server frames in buf: [{opcode, payload}]; with whole, throws on a partial frame at the end. */
export function parseFrames(buf, whole = false) {
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

/** The code of the first close frame in frames (1005 for one without), or undefined. */
export function closeCodeOf(frames) {
    const f = frames.find((x) => x.opcode === 8);
    if (!f)
        return undefined;
    return f.payload.length >= 2 ? f.payload.readUInt16BE(0) : 1005;
}
