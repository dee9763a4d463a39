// The shipped systemd unit's SystemCallFilter= against the system calls chatd really
// makes: chatd starts and serves a little under strace, and every call it made must be
// one the unit lets through, or chatd would die of SIGSYS under systemd.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import {
    api, registerAndLogin, repoRoot, startServer, tmpDir, waitFor, wsConnect,
} from './lib/harness.mjs';
import {
    expandGroup, killedBy, parseSummary, stopTraced, straceWorks, tracedEnv, tracedPid, unitFilter, which,
} from './lib/strace.mjs';

const unitText = readFileSync(path.join(repoRoot, 'contrib/chatd.service'), 'utf8');
const as = (u) => ({ token: u.access_token });

/* Start, accounts, a room, a message by HTTP and one by WebSocket, history, a log
 * reopen and a drain: the paths a production server walks in its first minute. */
async function workload(server) {
    const [alice, bob] = [await registerAndLogin(server), await registerAndLogin(server)];
    const http = api(server);
    const room = (await http.post('/v1/rooms', { name: 'sys', members: [bob.username] }, as(alice))).json.room;
    assert.ok(room, 'room created');
    const ws = await wsConnect(server, bob.access_token);
    ws.send({ type: 'send', room_id: room.id, body: 'by websocket', client_msg_id: 'sys-1' });
    assert.equal((await ws.next('ack', 30000)).client_msg_id, 'sys-1');
    const posted = await http.post(`/v1/rooms/${room.id}/messages`, { body: 'by http' }, as(alice));
    assert.equal(posted.status, 201, posted.text);
    await ws.next('message', 30000);
    const history = await http.get(`/v1/rooms/${room.id}/messages`, as(bob));
    assert.equal(history.status, 200, history.text);
    await ws.close();
}

/*
 * The unit runs chatd as an unprivileged dynamic user, and some calls are made only as
 * root (SQLite gives a new WAL the database's owner with fchown when euid is 0): as root,
 * strace runs chatd as nobody, with its directories made reachable and its own.
 * The wrapper is a shell that gets chatd's command line: $1 the binary, $3 -c's file.
 */
function asServiceUser(work, ownDirs, strace) {
    if (process.getuid() !== 0)
        return strace;
    for (const d of ownDirs)
        mkdirSync(d, { mode: 0o700 });
    const script = [
        `chmod 0711 "${work}" "$(dirname "$3")"`,
        `chmod 0644 "$3"`,
        ...ownDirs.map((d) => `chown nobody: "${d}"`),
        `exec ${[...strace, '-u', 'nobody'].map((w) => `'${w}'`).join(' ')} "$@"`,
    ].join(' && ');
    return ['sh', '-c', script, 'chatd-as-nobody'];
}

describe('systemd unit and the system calls chatd makes', { skip: straceWorks() && which('systemd-analyze') ? false : 'needs strace (with ptrace allowed, no $CHATD_WRAPPER) and systemd-analyze' }, () => {
    it('reads the groups from systemd-analyze, nested ones included', () => {
        // @system-service names @resources rather than its calls.
        assert.ok(expandGroup('@system-service').has('setpriority'));
        const filter = unitFilter('SystemCallFilter=@system-service\nSystemCallFilter=~@resources\n');
        assert.deepEqual(killedBy(filter, ['read', 'setpriority']), ['setpriority']);
        const deny = unitFilter('SystemCallFilter=~@resources\nSystemCallFilter=setpriority\n');
        assert.deepEqual(killedBy(deny, ['read', 'setpriority', 'sched_setaffinity']), ['sched_setaffinity']);
        const soft = unitFilter('SystemCallFilter=~@resources\nSystemCallErrorNumber=EPERM\n');
        assert.deepEqual(killedBy(soft, ['setpriority']), []);
    });

    it('makes no call the shipped unit forbids, from start to SIGTERM', async () => {
        const work = tmpDir('chatd-strace-');
        const summary = path.join(work, 'summary.txt');
        const dataDir = path.join(work, 'data');
        const logDir = path.join(work, 'log');
        const log = path.join(logDir, 'chatd.log');
        const server = await startServer({
            wrapper: asServiceUser(work, [dataDir, logDir],
                ['strace', '-f', '-qq', '-c', '-o', summary]),
            dataDir, config: `[log]\nfile = ${log}\n`,
            // Nobody listens there: the notifications fail, but their calls are made.
            env: tracedEnv({ NOTIFY_SOCKET: path.join(work, 'notify.sock'), WATCHDOG_USEC: '200000' }),
        });
        await workload(server);
        process.kill(tracedPid(server), 'SIGHUP');
        await waitFor(() => /log reopened/.test(readFileSync(log, 'utf8')),
            { timeout: 30000, message: '"log reopened" after SIGHUP' });
        const st = await stopTraced(server, 'SIGTERM');
        assert.equal(st.code, 0, server.logs());
        const used = parseSummary(readFileSync(summary, 'utf8'));
        assert.ok(used.has('fsync') || used.has('fdatasync') || used.has('pwrite64'),
            `the trace holds the database's calls: ${[...used.keys()].join(' ')}`);
        const filter = unitFilter(unitText);
        assert.equal(filter.allow, true, 'the unit has an allow-list (SystemCallFilter=@system-service)');
        assert.deepEqual(killedBy(filter, used.keys()), [],
            'calls contrib/chatd.service forbids (systemd would kill chatd with SIGSYS)');
    });

    it('goes on when its threads may not lower their priority (EPERM), saying so at debug', async () => {
        const server = await startServer({
            wrapper: ['strace', '-f', '-qq', '-o', '/dev/null',
                '-e', 'trace=sched_setscheduler,setpriority',
                '-e', 'inject=sched_setscheduler,setpriority:error=EPERM'],
            config: '[log]\nlevel = debug\n', env: tracedEnv(),
        });
        await workload(server);
        const st = await stopTraced(server, 'SIGTERM');
        assert.equal(st.code, 0, server.logs());
        assert.match(server.logs(), /thread stays in the normal class thread=writer error="Operation not permitted"/);
        assert.match(server.logs(), /checkpoint thread keeps its nice value error="Operation not permitted"/);
    });
});
