// docs/walkthrough.md, run: gdb in batch mode over the walkthrough's breakpoints (read
// from the document's gdb block) on the `make debug` build while one message is sent
// over a WebSocket. Every breakpoint must be hit, first hits in the documented order,
// and every command the document says to type at a stop must run without an error.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, it } from 'node:test';
import {
    DEFAULT_CONFIG, registerAndLogin, repoRoot, request, tmpDir, uniqueName, waitFor, wsConnect,
} from './lib/harness.mjs';

const DOC = path.join(repoRoot, 'docs/walkthrough.md');
const BIN = path.resolve(repoRoot, process.env.CHATD_DEBUG_BIN || 'build-debug/chatd');
const MARK = '<!-- walkthrough: breakpoints';

/** The walkthrough's breakpoints: [{location, commands: [...]}], in document order. */
export function parseWalkthrough(text) {
    const at = text.indexOf(MARK);
    assert.ok(at >= 0, `docs/walkthrough.md has no "${MARK}" marker`);
    const block = /```gdb\n([\s\S]*?)```/.exec(text.slice(at));
    assert.ok(block, 'no ```gdb block after the marker');
    const bps = [];
    for (const line of block[1].split('\n')) {
        if (!line.trim())
            continue;
        if (/^break\s/.test(line))
            bps.push({ location: line.replace(/^break\s+/, '').trim(), commands: [] });
        else if (/^\s+\S/.test(line) && bps.length)
            bps.at(-1).commands.push(line.trim());
        else
            throw new Error(`walkthrough block: unexpected line ${JSON.stringify(line)}`);
    }
    return bps;
}

/** A gdb command file: breakpoint 1 enables the rest, each prints "WALK n" when hit. */
function gdbScript(bps) {
    const out = [
        'set pagination off', 'set confirm off', 'set print elements 1000', 'set print thread-events off',
        'set breakpoint pending off',
        'handle SIGPIPE nostop noprint pass', 'handle SIGTERM nostop noprint pass',
    ];
    bps.forEach((bp, i) => {
        const n = i + 1;
        out.push(`break ${bp.location}`, 'commands', 'silent',
            `printf "WALK ${n} BEGIN\\n"`, ...bp.commands,
            `printf "WALK ${n} END\\n"`);
        if (n === 1)
            out.push('enable');
        out.push('continue', 'end');
        if (n > 1)
            out.push(`disable ${n}`);
    });
    out.push('run');
    return out.join('\n') + '\n';
}

function skipReason() {
    if (spawnSync('sh', ['-c', 'command -v gdb']).status !== 0)
        return 'gdb is not installed (scripts/install-deps.sh installs it)';
    if (!existsSync(BIN))
        return `${path.relative(repoRoot, BIN)} not found: run make debug (make test does)`;
    return false;
}

let gdb = null;
after(() => {
    if (gdb && gdb.exitCode === null)
        gdb.kill('SIGKILL');
});

it('the document lists real breakpoints with a marker block', () => {
    const bps = parseWalkthrough(readFileSync(DOC, 'utf8'));
    assert.ok(bps.length >= 10, `only ${bps.length} breakpoints`);
    for (const bp of bps)
        assert.ok(bp.commands.length > 0, `${bp.location}: nothing to print`);
});

it('gdb hits every breakpoint of docs/walkthrough.md in order while a message goes through',
    { skip: skipReason(), timeout: 120000 }, async () => {
        const bps = parseWalkthrough(readFileSync(DOC, 'utf8'));
        const dir = tmpDir('chatd-walk-');
        const script = path.join(dir, 'walk.gdb');
        writeFileSync(script, gdbScript(bps));
        const conf = path.join(dir, 'chatd.conf');
        writeFileSync(conf, DEFAULT_CONFIG);

        gdb = spawn('gdb', ['-batch', '-nx', '-x', script, '--args', BIN, '-c', conf,
            '--listen', '127.0.0.1:0', '--data-dir', path.join(dir, 'data')],
        { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        gdb.stdout.setEncoding('utf8').on('data', (d) => { out += d; });
        gdb.stderr.setEncoding('utf8').on('data', (d) => { out += d; });
        const exited = new Promise((resolve) => gdb.on('exit', resolve));
        const log = () => `--- gdb output:\n${out.slice(-20000)}`;

        const m = await waitFor(() => /chatd listening on http:\/\/([^:\s]+):(\d+)/.exec(out),
            { timeout: 60000, message: 'chatd under gdb listening' }).catch((e) => {
            throw new Error(`${e.message}\n${log()}`);
        });
        assert.ok(!/WALK/.test(out), `a breakpoint fired before the message:\n${log()}`);
        const server = { host: m[1], port: Number(m[2]) };

        // Three members; alice and bob connected, carol offline.
        const users = [];
        for (const p of ['alice', 'bob', 'carol'])
            users.push(await registerAndLogin(server, uniqueName(p)));
        const room = await request(server, 'POST', '/v1/rooms', {
            token: users[0].access_token,
            body: { name: 'walk', members: [users[1].username, users[2].username] },
        });
        assert.equal(room.status, 201, room.text);
        const roomId = room.json.room.id;
        const wa = await wsConnect(server, users[0].access_token, { timeout: 30000 });
        const wb = await wsConnect(server, users[1].access_token, { timeout: 30000 });
        await wa.next('hello', 30000);
        await wb.next('hello', 30000);
        // With presence in the server, alice hears that bob came online: let that frame
        // go out before the walk begins, so the socket breakpoints see only our message.
        const pres = await request(server, 'GET', `/v1/presence?user_ids=${users[1].user.id}`,
            { token: users[0].access_token, timeout: 30000 });
        if (pres.status === 200)
            await wa.next({ type: 'presence', user_id: users[1].user.id }, 30000);

        wa.send({ type: 'send', room_id: roomId, body: 'hello from gdb', client_msg_id: 'walk-1' });
        const ack = await wa.next('ack', 60000).catch((e) => { throw new Error(`${e.message}\n${log()}`); });
        assert.equal(ack.message.body, 'hello from gdb');
        const got = await wb.next('message', 60000);
        assert.equal(got.message.seq, ack.message.seq);
        // The last stop (the flush to bob) has printed its marker by now: bob has the bytes.
        await waitFor(() => new RegExp(`^WALK ${bps.length} END$`, 'm').test(out),
            { timeout: 30000, message: 'the last marker' }).catch((e) => {
            throw new Error(`${e.message}\n${log()}`);
        });
        await Promise.all([wa.close(), wb.close()]);

        // First hits in the documented order, each stop's commands run to the end.
        const firsts = [];
        for (const mm of out.matchAll(/^WALK (\d+) (BEGIN|END)$/gm)) {
            const n = Number(mm[1]);
            if (mm[2] === 'BEGIN' && !firsts.includes(n))
                firsts.push(n);
        }
        const want = bps.map((_, i) => i + 1);
        assert.deepEqual(firsts, want,
            `first hits ${firsts.map((n) => `${n} ${bps[n - 1].location}`).join(', ')}\n${log()}`);
        for (const n of want) {
            const begin = out.indexOf(`WALK ${n} BEGIN\n`);
            const end = out.indexOf(`WALK ${n} END\n`, begin);
            assert.ok(end > begin, `stop ${n} (${bps[n - 1].location}): its commands did not finish\n${log()}`);
            const between = out.slice(begin, end);
            assert.ok(!/No symbol|There is no member|Cannot access memory|not defined|syntax error|Invalid/i.test(between),
                `stop ${n} (${bps[n - 1].location}): a command failed:\n${between}`);
        }
        assert.match(out, /\\"body\\":\\"hello from gdb\\"/, 'the payload printed at the bus');
        assert.match(out, /writer_main/, 'the writer thread shows in the backtraces');

        // A clean end: SIGTERM to chatd (gdb passes it on), then gdb exits with it.
        const kids = readFileSync(`/proc/${gdb.pid}/task/${gdb.pid}/children`, 'utf8').trim().split(/\s+/);
        for (const k of kids.filter(Boolean))
            process.kill(Number(k), 'SIGTERM');
        let timer;
        const code = await Promise.race([exited,
            new Promise((r) => { timer = setTimeout(() => r('timeout'), 30000); })]);
        clearTimeout(timer);
        assert.equal(code, 0, `gdb exit ${code}\n${log()}`);
        assert.match(out, /exited normally/, log());
    });
