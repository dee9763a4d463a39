// ws-rfc6455.test.mjs: RFC 6455's rules on what a client may send, one case per row,
// over a raw socket. A refused stream gets a close frame with the code the RFC names
// (1002 protocol error, 1007 bad UTF-8, 1009 too big; 1003 for binary, which chatd
// does not take) before TCP ends; an accepted one is answered. UTF-8 is checked across
// fragments (a character split between two is fine), and so is the message length.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, registerAndLogin } from './lib/harness.mjs';
import { closeCodeOf, frame, parseFrames, rawFrame, rawWs, withDeadline } from './lib/rawws.mjs';

const MAX = 1024;   // [websocket] max_message_bytes below
let server, user;

before(async () => {
    server = await startServer({ config: `[websocket]\nmax_message_bytes = ${MAX}` });
    user = await registerAndLogin(server);
});

after(async () => {
    if (server && server.exitStatus === null)
        await server.stop();
});

const bytes = (...a) => Buffer.from(a);
const ping = JSON.stringify({ type: 'ping' });
/** A client frame of any length (the 16-bit form from 126 bytes on). */
function big(b0, payload) {
    const n = payload.length;
    return n < 126 ? rawFrame(b0, n, [], payload) : rawFrame(b0, 126, [n >> 8, n & 0xff], payload);
}
/** A ping request whose JSON carries s (bytes) in a string field, cut at each offset. */
function pingWith(extra, cuts) {
    const text = Buffer.concat([Buffer.from('{"type":"ping","x":"'), extra, Buffer.from('"}')]);
    const parts = [];
    let prev = 0;
    for (const at of [...cuts, text.length]) {
        parts.push(text.subarray(prev, at));
        prev = at;
    }
    return Buffer.concat(parts.map((p, i) =>
        frame(i === 0 ? 1 : 0, p, { fin: i === parts.length - 1 })));
}
const euro = bytes(0xe2, 0x82, 0xac);
const smile = bytes(0xf0, 0x9f, 0x98, 0x80);
const prefix = '{"type":"ping","x":"'.length;
const unmasked = (b0, payload) => Buffer.concat([bytes(b0, payload.length), Buffer.from(payload)]);

const refused = [
    // frame layout
    ['an unmasked text frame', unmasked(0x81, ping), 1002],
    ['an unmasked ping', unmasked(0x89, 'p'), 1002],
    ['RSV1 set', frame(0x40 | 1, ping), 1002],
    ['RSV2 set', frame(0x20 | 1, ping), 1002],
    ['RSV3 set', frame(0x10 | 1, ping), 1002],
    ['RSV1 on a ping', frame(0x40 | 9, 'p'), 1002],
    ...[3, 4, 5, 6, 7].map((op) => [`data opcode ${op}`, frame(op, 'x'), 1002]),
    ...[0xb, 0xc, 0xd, 0xe, 0xf].map((op) => [`control opcode ${op.toString(16)}`, frame(op, 'x'), 1002]),
    // fragmentation
    ['a continuation with no message open', frame(0, ping), 1002],
    ['a final continuation with no message open', frame(0, ping, { fin: true }), 1002],
    ['a text frame while a fragmented message is open',
        Buffer.concat([frame(1, '{"type"', { fin: false }), frame(1, ping)]), 1002],
    ['a reserved opcode between fragments',
        Buffer.concat([frame(1, '{"type"', { fin: false }), frame(3, 'x')]), 1002],
    // UTF-8
    ['a lone continuation byte', pingWith(bytes(0x80), []), 1007],
    ['an overlong "/"', pingWith(bytes(0xc0, 0xaf), []), 1007],
    ['a UTF-16 surrogate', pingWith(bytes(0xed, 0xa0, 0x80), []), 1007],
    ['a code point past U+10FFFF', pingWith(bytes(0xf4, 0x90, 0x80, 0x80), []), 1007],
    ['byte 0xff', pingWith(bytes(0xff), []), 1007],
    ['a character cut short by the next one, across fragments',
        pingWith(bytes(0xe2, 0x82, 0x41), [prefix + 2]), 1007],
    ['a bad byte in the last fragment only', pingWith(Buffer.concat([euro, bytes(0xc3, 0x28)]), [prefix + 3]), 1007],
    ['a message ending inside a character',
        Buffer.concat([frame(1, '{"type":"ping","x":"', { fin: false }), frame(0, bytes(0xe2, 0x82))]), 1007],
    ['a close reason that is not UTF-8', frame(8, bytes(0x03, 0xe8, 0xc3, 0x28)), 1007],
    // close codes a peer may not send
    ...[999, 1004, 1005, 1006, 1015, 5000].map((code) =>
        [`a close with code ${code}`, frame(8, bytes(code >> 8, code & 0xff)), 1002]),
    // length
    ['one frame past max_message_bytes', big(0x81, Buffer.alloc(MAX + 1, 'a')), 1009],
    ['fragments adding up past max_message_bytes',
        Buffer.concat([big(0x01, Buffer.alloc(MAX / 2, 'a')), big(0x00, Buffer.alloc(MAX / 2, 'a')),
            frame(0x80, 'a')]), 1009],
    ['a fragmented message announcing too much in its last frame',
        Buffer.concat([big(0x01, Buffer.alloc(MAX - 10, 'a')), big(0x80, Buffer.alloc(11, 'a'))]), 1009],
    // binary (not taken, by chatd's choice)
    ['a binary frame', frame(2, 'x'), 1003],
];

/** Sends bytes on a fresh connection, waits for TCP to end; the frames that came. */
async function framesUntilEnd(payload) {
    const c = await rawWs(server, user.access_token);
    c.sock.write(payload);
    await withDeadline(c.ended, 15000, 'the server ends the connection');
    return parseFrames(c.data(), true);
}

for (const [what, payload, code] of refused) {
    test(`${what}: close ${code}`, { timeout: 30000 }, async () => {
        const frames = await framesUntilEnd(payload);
        const last = frames[frames.length - 1];
        assert.ok(last && last.opcode === 8, `a close frame last; got opcodes ${frames.map((f) => f.opcode)}`);
        assert.equal(closeCodeOf(frames), code);
        assert.ok(!frames.some((f) => f.opcode === 1 && f.payload.includes('"pong"')),
            'the refused message was not dispatched');
    });
}

const replies = (frames) => frames.filter((f) => f.opcode === 1 && f.payload.includes('"pong"')).length;

const accepted = [
    ['one frame', frame(1, ping), 1],
    ['a character split between two fragments', pingWith(euro, [prefix + 1]), 1],
    ['a 4-byte character split in three', pingWith(smile, [prefix + 1, prefix + 3]), 1],
    ['one byte per fragment', pingWith(Buffer.concat([euro, smile]),
        Array.from({ length: prefix + 8 }, (_, i) => i + 1)), 1],
    ['empty fragments around the message',
        Buffer.concat([frame(1, '', { fin: false }), frame(0, ping, { fin: false }), frame(0, '')]), 1],
    ['a ping and a pong between fragments',
        Buffer.concat([frame(1, ping.slice(0, 3), { fin: false }), frame(9, 'p'), frame(10, 'q'),
            frame(0, ping.slice(3))]), 1],
    ['a message of exactly max_message_bytes in fragments',
        (() => {
            const text = Buffer.concat([Buffer.from('{"type":"ping","x":"'),
                Buffer.alloc(MAX - prefix - 2, 'a'), Buffer.from('"}')]);
            return Buffer.concat([big(0x01, text.subarray(0, 600)), big(0x80, text.subarray(600))]);
        })(), 1],
    ['two messages in one write', Buffer.concat([frame(1, ping), pingWith(euro, [prefix + 2])]), 2],
];

for (const [what, payload, n] of accepted) {
    test(`accepted: ${what}`, { timeout: 30000 }, async () => {
        const c = await rawWs(server, user.access_token);
        c.sock.write(payload);
        const frames = await c.until((f) => replies(f) >= n || closeCodeOf(f) !== undefined,
            15000, `${n} replies`);
        assert.equal(closeCodeOf(frames), undefined, 'no close');
        assert.equal(replies(frames), n);
        c.sock.destroy();
    });
}

test('a close in the middle of a fragmented message is answered with its code', { timeout: 30000 }, async () => {
    const frames = await framesUntilEnd(Buffer.concat([
        frame(1, '{"type"', { fin: false }), frame(8, bytes(0x03, 0xe8, 0x62, 0x79, 0x65))]));
    assert.equal(closeCodeOf(frames), 1000);
    assert.equal(replies(frames), 0);
});

test('a ping\'s payload comes back exactly, 0 to 125 bytes of any value', { timeout: 30000 }, async () => {
    const c = await rawWs(server, user.access_token);
    const payloads = [Buffer.alloc(0), bytes(0x8a, 0x00), bytes(0x88, 0x02, 0x03, 0xe8),
        Buffer.from(Array.from({ length: 125 }, (_, i) => (i * 37 + 0x80) & 0xff))];
    c.sock.write(Buffer.concat(payloads.map((p) => frame(9, p))));
    const frames = await c.until((f) => f.filter((x) => x.opcode === 10).length >= payloads.length,
        15000, 'the pongs');
    assert.deepEqual(frames.filter((f) => f.opcode === 10).map((f) => f.payload.toString('hex')),
        payloads.map((p) => p.toString('hex')));
    assert.equal(closeCodeOf(frames), undefined);
    c.sock.destroy();
});
