// Operations: the systemd unit, `make install`, the sd_notify protocol, online backups,
// `chatd check-config` and log reopening on SIGHUP, each against the real binary.
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync } from 'node:child_process';
import {
    existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import {
    DEFAULT_CONFIG, chatdBin, freePort, registerAndLogin, repoRoot, request, runChatd,
    sqliteOnly, startServer, tmpDir, uniqueName, waitFor,
} from './lib/harness.mjs';
import { makeCertificates } from './lib/push-receiver.mjs';

function which(cmd) {
    const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
    return r.status === 0 ? r.stdout.trim() : null;
}

function run(cmd, args, opts = {}) {
    return new Promise((resolve) => {
        execFile(cmd, args, { encoding: 'utf8', timeout: 60000, ...opts },
            (err, stdout, stderr) => resolve({ code: err ? (err.code ?? 1) : 0, stdout, stderr }));
    });
}

describe('systemd unit', () => {
    const analyze = which('systemd-analyze');
    it('is accepted by systemd-analyze verify', { skip: analyze ? false : 'systemd-analyze is not installed' }, async () => {
        // verify wants the ExecStart binary to exist: point it at the one under test.
        const dir = tmpDir('chatd-unit-');
        const unit = readFileSync(path.join(repoRoot, 'contrib/chatd.service'), 'utf8');
        const m = /^ExecStart=(\S+)/m.exec(unit);
        assert.ok(m, 'the unit has an ExecStart');
        const file = path.join(dir, 'chatd.service');
        writeFileSync(file, unit.replace(/^ExecStart=\S+/m, `ExecStart=${chatdBin()}`));
        const r = await run(analyze, ['verify', '--man=no', file], {
            env: { ...process.env, SYSTEMD_LOG_LEVEL: 'warning' },
        });
        // Warnings about this machine (no running systemd, a container) are not the
        // unit's; anything naming the unit file is.
        const about = (r.stdout + r.stderr).split('\n').filter((l) => l.includes('chatd.service'));
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assert.deepEqual(about, [], r.stdout + r.stderr);
    });

    it('asks for what docs/deploy.md promises', () => {
        const unit = readFileSync(path.join(repoRoot, 'contrib/chatd.service'), 'utf8');
        assert.match(unit, /^LoadCredential=chatd\.conf:\/etc\/chatd\/chatd\.conf$/m);
        assert.match(unit, /^ExecStart=\S+ -c %d\/chatd\.conf /m);
        for (const line of ['Type=notify', 'NoNewPrivileges=yes', 'ProtectSystem=strict',
            'ProtectHome=yes', 'PrivateTmp=yes', 'SystemCallFilter=@system-service',
            'Restart=on-failure', 'StateDirectory=chatd'])
            assert.match(unit, new RegExp(`^${line}$`, 'm'), line);
        assert.match(unit, /^RestrictAddressFamilies=.*AF_INET6/m);
        assert.match(unit, /^LimitNOFILE=\d{5,}$/m);
        assert.match(unit, /^WatchdogSec=\d+/m);
        assert.match(unit, /^(DynamicUser=yes|User=\w+)$/m);
    });
});

describe('make install', () => {
    // The paths the deploy guide's table names, e.g. "| the binary | `/usr/local/bin/chatd` |".
    const guide = readFileSync(path.join(repoRoot, 'docs/deploy.md'), 'utf8');
    const table = Object.fromEntries([...guide.matchAll(/^\| ([^|]+?) \| `(\/[^`]+)` \|$/gm)]
        .map((m) => [m[1], m[2]]));
    const build = path.relative(repoRoot, path.dirname(chatdBin()));
    const make = which('make');

    it('puts the binary, the unit and the config where docs/deploy.md says', { skip: make ? false : 'make is not installed' }, async () => {
        const paths = Object.values(table);
        assert.ok(paths.some((p) => p.endsWith('/bin/chatd')), `no binary in ${JSON.stringify(table)}`);
        assert.ok(paths.some((p) => p.endsWith('chatd.service')), 'no unit in the table');
        assert.ok(paths.some((p) => p.endsWith('chatd.conf')), 'no config in the table');
        const dest = tmpDir('chatd-install-');
        // -o: install what is built; never rebuild from under a running test.
        const r = await run(make, ['-s', '-o', `${build}/chatd`, `BUILD=${build}`,
            `DESTDIR=${dest}`, 'install'], { cwd: repoRoot });
        assert.equal(r.code, 0, r.stdout + r.stderr);
        for (const p of paths)
            assert.ok(existsSync(path.join(dest, p)), `${p} not installed`);
        const bin = path.join(dest, paths.find((p) => p.endsWith('/bin/chatd')));
        assert.ok(statSync(bin).mode & 0o100, 'the binary is executable');
        const conf = path.join(dest, paths.find((p) => p.endsWith('chatd.conf')));
        assert.equal(readFileSync(conf, 'utf8'), readFileSync(path.join(repoRoot, 'chatd.conf'), 'utf8'));
        const v = await run(bin, ['check-config', '-c', conf]);
        assert.equal(v.code, 0, v.stdout + v.stderr);

        // Installing again keeps an edited config.
        writeFileSync(conf, '# mine\n[server]\nlisten = 127.0.0.1:9999\n');
        const again = await run(make, ['-s', '-o', `${build}/chatd`, `BUILD=${build}`,
            `DESTDIR=${dest}`, 'install'], { cwd: repoRoot });
        assert.equal(again.code, 0, again.stdout + again.stderr);
        assert.match(readFileSync(conf, 'utf8'), /^# mine/);
        const unit = readFileSync(path.join(dest, paths.find((p) => p.endsWith('chatd.service'))), 'utf8');
        assert.match(unit, /^ExecStart=\/usr\/local\/bin\/chatd /m);
    });

    it('points the unit at the binary of another PREFIX', { skip: make ? false : 'make is not installed' }, async () => {
        const dest = tmpDir('chatd-install-');
        const r = await run(make, ['-s', '-o', `${build}/chatd`, `BUILD=${build}`,
            `DESTDIR=${dest}`, 'PREFIX=/usr', 'install'], { cwd: repoRoot });
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assert.ok(existsSync(path.join(dest, 'usr/bin/chatd')));
        const unit = readFileSync(path.join(dest, 'lib/systemd/system/chatd.service'), 'utf8');
        assert.match(unit, /^ExecStart=\/usr\/bin\/chatd /m);
        assert.ok(!unit.includes('/usr/local'), 'a /usr/local path is left in the unit');
    });
});

/** A unix datagram socket that prints every datagram it gets, one line each. */
async function notifyListener() {
    const dir = tmpDir('chatd-notify-');
    const sock = path.join(dir, 'notify.sock');
    const py = [
        'import socket, sys',
        's = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)',
        's.bind(sys.argv[1])',
        'print("BOUND", flush=True)',
        'while True:',
        '    d = s.recv(4096)',
        '    print(d.decode().replace("\\n", " "), flush=True)',
    ].join('\n');
    const proc = spawn('python3', ['-u', '-c', py, sock], { stdio: ['ignore', 'pipe', 'pipe'] });
    const lines = [];
    let buf = '';
    proc.stdout.setEncoding('utf8').on('data', (d) => {
        buf += d;
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
            lines.push({ text: buf.slice(0, i), at: Date.now() });
            buf = buf.slice(i + 1);
        }
    });
    let stderr = '';
    proc.stderr.setEncoding('utf8').on('data', (d) => { stderr += d; });
    await waitFor(() => lines.some((l) => l.text === 'BOUND'),
        { timeout: 10000, message: `python3 listener bound (${stderr})` });
    return {
        sock, lines, proc,
        close() { proc.kill('SIGKILL'); },
        count: (text) => lines.filter((l) => l.text === text).length,
    };
}

describe('sd_notify', { skip: which('python3') ? false : 'python3 is not installed' }, () => {
    let listener;
    after(() => listener?.close());

    it('READY=1 once it serves, WATCHDOG=1 while it runs, STOPPING=1 on SIGTERM', async () => {
        listener = await notifyListener();
        const port = await freePort();
        // READY=1 must mean "it answers": ask the moment it arrives.
        let healthAtReady = null;
        const watch = setInterval(() => {
            if (healthAtReady === null && listener.count('READY=1') > 0) {
                healthAtReady = 'asking';
                request({ host: '127.0.0.1', port }, 'GET', '/healthz')
                    .then((r) => { healthAtReady = r.status; }, (e) => { healthAtReady = e.message; });
            }
        }, 5);
        let server;
        try {
            server = await startServer({
                listen: `127.0.0.1:${port}`,
                env: { NOTIFY_SOCKET: listener.sock, WATCHDOG_USEC: '200000' },
            });
            await waitFor(() => listener.count('READY=1') === 1, { timeout: 10000, message: 'READY=1' });
            await waitFor(() => healthAtReady === 200, { timeout: 10000, message: `GET /healthz at READY=1 (${healthAtReady})` });
        } finally {
            clearInterval(watch);
        }
        // 200 ms watchdog: a ping at least every 100 ms.
        const before = listener.count('WATCHDOG=1');
        await waitFor(() => listener.count('WATCHDOG=1') >= before + 3,
            { timeout: 5000, message: 'three WATCHDOG=1' });
        assert.equal(listener.count('STOPPING=1'), 0);
        assert.equal(await server.stop('SIGTERM'), 0, server.logs());
        await waitFor(() => listener.count('STOPPING=1') === 1, { timeout: 5000, message: 'STOPPING=1' });
        const order = listener.lines.map((l) => l.text).filter((t) => t !== 'WATCHDOG=1' && t !== 'BOUND');
        assert.deepEqual(order, ['READY=1', 'STOPPING=1']);
        assert.equal(listener.count('READY=1'), 1);
    });

    it('sends no WATCHDOG=1 without WATCHDOG_USEC, and nothing without NOTIFY_SOCKET', async () => {
        const l2 = await notifyListener();
        try {
            const server = await startServer({ env: { NOTIFY_SOCKET: l2.sock, WATCHDOG_USEC: '' } });
            await waitFor(() => l2.count('READY=1') === 1, { timeout: 10000, message: 'READY=1' });
            // Another server's watchdog is on at 100 ms: half a second of silence here says
            // this one is off.
            const watched = await startServer({ env: { NOTIFY_SOCKET: listener.sock, WATCHDOG_USEC: '200000' } });
            const base = listener.count('WATCHDOG=1');
            await waitFor(() => listener.count('WATCHDOG=1') >= base + 5, { timeout: 5000, message: 'pings from the watched server' });
            assert.equal(l2.count('WATCHDOG=1'), 0);
            assert.equal(await watched.stop(), 0);
            assert.equal(await server.stop(), 0);
            const plain = await startServer({ env: { NOTIFY_SOCKET: '' } });
            assert.equal(await plain.stop(), 0, plain.logs());
        } finally {
            l2.close();
        }
    });
});

describe('chatd backup', { skip: sqliteOnly('chatd backup copies the SQLite database (PostgreSQL: pg_dump, docs/deploy.md)') }, () => {
    it('copies the database of a running server into a file sqlite3 and chatd can open', async () => {
        const server = await startServer();
        const names = [uniqueName('bk'), uniqueName('bk')];
        for (const n of names)
            await registerAndLogin(server, n);
        const dir = tmpDir('chatd-backup-');
        const file = path.join(dir, 'copy.db');
        const r = await runChatd(['backup', file, '-c', server.configPath, '--data-dir', server.dataDir]);
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assert.ok(statSync(file).size > 0);
        // Still serving while and after the copy.
        assert.equal((await request(server, 'GET', '/healthz')).status, 200);

        if (which('sqlite3')) {
            const q = await run('sqlite3', [file, 'PRAGMA integrity_check; SELECT username FROM users ORDER BY id;']);
            assert.equal(q.code, 0, q.stderr);
            assert.deepEqual(q.stdout.trim().split('\n'), ['ok', ...names]);
        }
        assert.equal(await server.stop(), 0, server.logs());

        // The copy is a whole data directory's database: a server started on it (with
        // the same keys) knows the users.
        const restored = path.join(dir, 'data');
        mkdirSync(restored);
        renameSync(file, path.join(restored, 'chatd.db'));
        for (const f of ['jwt.pem', 'vapid.pem'])
            if (existsSync(path.join(server.dataDir, f)))
                writeFileSync(path.join(restored, f), readFileSync(path.join(server.dataDir, f)), { mode: 0o600 });
        const again = await startServer({ dataDir: restored });
        const login = await request(again, 'POST', '/v1/auth/login',
            { body: { username: names[1], password: 'correct horse battery' } });
        assert.equal(login.status, 200, login.text);
        assert.equal(await again.stop(), 0, again.logs());
    });

    it('fails with a message when the target cannot be written', async () => {
        const server = await startServer();
        const r = await runChatd(['backup', '/nonexistent-dir/x.db', '-c', server.configPath,
            '--data-dir', server.dataDir]);
        assert.notEqual(r.code, 0);
        assert.ok(r.stderr.trim().length > 0, 'says why');
        assert.equal(await server.stop(), 0);
    });
});

describe('chatd check-config', () => {
    it('prints ok for a good file and exits 0', async () => {
        const dir = tmpDir('chatd-cc-');
        const good = path.join(dir, 'good.conf');
        writeFileSync(good, DEFAULT_CONFIG);
        const r = await runChatd(['check-config', '-c', good]);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout.trim(), 'ok');
        const shipped = await runChatd(['check-config', '-c', path.join(repoRoot, 'chatd.conf')]);
        assert.equal(shipped.code, 0, shipped.stderr);
    });

    it('names the file, line and key of a bad one and exits non-zero', async () => {
        const dir = tmpDir('chatd-cc-');
        const bad = path.join(dir, 'bad.conf');
        writeFileSync(bad, '[server]\nlisten = 127.0.0.1:1\nmax_connections = lots\n');
        const r = await runChatd(['check-config', '-c', bad]);
        assert.notEqual(r.code, 0);
        assert.match(r.stderr, /bad\.conf:3/);
        assert.match(r.stderr, /max_connections/);
        const unknown = path.join(dir, 'unknown.conf');
        writeFileSync(unknown, '[nope]\nx = 1\n');
        const u = await runChatd(['check-config', '-c', unknown]);
        assert.notEqual(u.code, 0);
        assert.match(u.stderr, /unknown\.conf:1/);
    });

    it('reads the files and directories keys name as the start will', async () => {
        const dir = tmpDir('chatd-cc-');
        const notPem = path.join(dir, 'not.pem');
        writeFileSync(notPem, 'this is no PEM\n');
        const check = async (name, text) => {
            const file = path.join(dir, `${name}.conf`);
            writeFileSync(file, text);
            return runChatd(['check-config', '-c', file]);
        };
        // A key file that is there but no key: refused, as the start refuses it.
        const key = await check('key', `[auth]\nkey_file = ${notPem}\n`);
        assert.notEqual(key.code, 0);
        assert.match(key.stderr, /key\.conf: key_file: .*not\.pem: not a PEM private key/);
        const ca = await check('ca', `[notification]\nca_file = ${notPem}\n`);
        assert.notEqual(ca.code, 0);
        assert.match(ca.stderr, /ca\.conf: ca_file: .*not\.pem: cannot load PEM certificates/);
        const web = await check('web', `[server]\nweb_dir = ${path.join(dir, 'no-such-dir')}\n`);
        assert.notEqual(web.code, 0);
        assert.match(web.stderr, /web\.conf: web_dir: .*no-such-dir: No such file or directory/);
        const webFile = await check('webfile', `[server]\nweb_dir = ${notPem}\n`);
        assert.match(webFile.stderr, /web_dir: .*not\.pem: Not a directory/);

        // The real things pass: a key chatd made, a CA bundle, a directory.
        const goodKey = path.join(dir, 'jwt.pem');
        const made = await runChatd(['keygen', goodKey]);
        assert.equal(made.code, 0, made.stderr);
        const { caFile } = makeCertificates(dir);
        const good = await check('good', `[server]\nweb_dir = ${dir}\n[auth]\nkey_file = ${goodKey}\n` +
            `[notification]\nca_file = ${caFile}\n`);
        assert.equal(good.code, 0, good.stderr);
        assert.equal(good.stdout.trim(), 'ok');
    });

    it('refuses to start on a web_dir that is not there', async () => {
        const dir = tmpDir('chatd-cc-');
        const conf = path.join(dir, 'chatd.conf');
        writeFileSync(conf, `[server]\nlisten = 127.0.0.1:0\ndata_dir = ${path.join(dir, 'data')}\n` +
            `web_dir = ${path.join(dir, 'missing')}\n`);
        const r = await run(chatdBin(), ['-c', conf]);
        assert.notEqual(r.code, 0);
        assert.match(r.stderr, /web_dir: .*missing: No such file or directory/);
    });
});

describe('SIGHUP', () => {
    it('reopens the [log] file, so rotation by renaming works', async () => {
        const dir = tmpDir('chatd-log-');
        const log = path.join(dir, 'chatd.log');
        const server = await startServer({ config: `[log]\nfile = ${log}\n` });
        await waitFor(() => existsSync(log) && /listening/.test(readFileSync(log, 'utf8')),
            { timeout: 5000, message: 'the log file has the start' });
        renameSync(log, `${log}.1`);
        server.proc.kill('SIGHUP');
        await waitFor(() => existsSync(log) && /log reopened/.test(readFileSync(log, 'utf8')),
            { timeout: 5000, message: 'a new file with "log reopened"' });
        // More lines go to the new file, none to the old one.
        const oldText = readFileSync(`${log}.1`, 'utf8');
        await registerAndLogin(server);
        assert.equal(await server.stop(), 0, server.logs());
        assert.equal(readFileSync(`${log}.1`, 'utf8'), oldText, 'the renamed file grew');
        assert.ok(!/log reopened/.test(oldText));
        assert.ok(readFileSync(log, 'utf8').split('\n').length > 2, 'the new file has the rest');
        assert.equal(server.proc.exitCode, 0);
    });
});
