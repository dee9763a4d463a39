// ws-client.test.mjs: a second, independent WebSocket client, Node's built-in
// WebSocket (undici, behind --experimental-websocket in Node 20), runs a smoke test:
// token in the query string as browsers send it, the chatd.v1 subprotocol, hello,
// ping/pong, a send and its ack, a message from another user, a clean close.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { startServer, api, registerAndLogin, uniqueName, wsConnect } from './lib/harness.mjs';

let server, alice, bob;

before(async () => {
    server = await startServer();
    [alice, bob] = await Promise.all(['alice', 'bob'].map((n) => registerAndLogin(server, uniqueName(n))));
});

after(async () => {
    if (server && server.exitStatus === null)
        await server.stop();
});

// Runs in the child: prints one JSON line per frame received, then {"closed":code}.
const CLIENT = `
const [url, roomId] = process.argv.slice(1);
const ws = new WebSocket(url, ['chatd.v1']);
const out = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
ws.onopen = () => out({ open: true, protocol: ws.protocol });
ws.onmessage = (e) => {
    const f = JSON.parse(e.data);
    out(f);
    if (f.type === 'hello') ws.send(JSON.stringify({ type: 'ping' }));
    if (f.type === 'pong') ws.send(JSON.stringify({ type: 'send', room_id: Number(roomId), body: 'from undici', client_msg_id: 'u-1' }));
    if (f.type === 'message') ws.close(1000, 'done');
};
ws.onclose = (e) => { out({ closed: e.code }); process.exit(0); };
ws.onerror = () => out({ error: true });
setTimeout(() => { out({ timeout: true }); process.exit(1); }, 20000);
`;

test("Node's built-in WebSocket client talks to the server", async () => {
    const room = (await api(server).post('/v1/rooms', { name: 'undici', members: [bob.username] },
        { token: alice.access_token })).json.room;
    const bobConn = await wsConnect(server, bob.access_token);
    await bobConn.next('hello');
    const url = `${server.wsUrl}/v1/ws?access_token=${encodeURIComponent(alice.access_token)}`;
    const child = spawn(process.execPath, ['--experimental-websocket', '--no-warnings', '-e', CLIENT, url, String(room.id)],
        { stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    child.stdout.setEncoding('utf8').on('data', (d) => {
        text += d;
        // once the ack is in, bob answers so the client gets a message and closes
        if (d.includes('"type":"ack"'))
            bobConn.send({ type: 'send', room_id: room.id, body: 'hi undici', client_msg_id: 'b-1' });
    });
    const code = await new Promise((resolve) => child.on('exit', resolve));
    const lines = text.trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(code, 0, text);
    assert.deepEqual(lines[0], { open: true, protocol: 'chatd.v1' });
    assert.equal(lines[1].type, 'hello');
    assert.equal(lines[1].user.id, alice.user.id);
    assert.ok(lines.some((f) => f.type === 'pong'));
    const ack = lines.find((f) => f.type === 'ack');
    assert.equal(ack.client_msg_id, 'u-1');
    assert.equal(ack.message.body, 'from undici');
    assert.equal(lines.find((f) => f.type === 'message').message.body, 'hi undici');
    assert.deepEqual(lines.at(-1), { closed: 1000 });
    assert.equal((await bobConn.next('message')).message.body, 'from undici');
    await bobConn.close();
});
