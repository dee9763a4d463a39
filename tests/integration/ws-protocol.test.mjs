// ws-protocol.test.mjs: frames no WebSocket library would send, through a raw socket
// upgraded by hand. Each protocol error gets a close frame with 1002 before the TCP
// connection ends (wslay catches most of these in its frame layer, where it gives up
// on the stream), and a pong answering a ping sent between two fragments of a message
// goes out before the reply to that message.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, registerAndLogin, wsConnect } from './lib/harness.mjs';
import { frame, parseFrames, rawFrame, rawWs, withDeadline } from './lib/rawws.mjs';

let server, user;

before(async () => {
    server = await startServer();
    user = await registerAndLogin(server);
});

after(async () => {
    if (server && server.exitStatus === null)
        await server.stop();
});

/** Sends bytes on a fresh connection, waits for TCP to end, returns what came before. */
async function closeAfter(bytes) {
    const c = await rawWs(server, user.access_token);
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
    const c = await rawWs(server, user.access_token);
    const text = JSON.stringify({ type: 'ping' });
    c.sock.write(Buffer.concat([
        frame(1, text.slice(0, 5), { fin: false }),
        frame(9, 'between'),
        frame(0, text.slice(5)),
        frame(9, 'after'),
    ]));
    const replyOf = (frames) => frames.findIndex((f) => f.opcode === 1 && f.payload.includes('"pong"'));
    await c.until((frames) => frames.filter((f) => f.opcode === 10).length >= 2 && replyOf(frames) >= 0,
        10000, 'two pongs and the reply');
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
