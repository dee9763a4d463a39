// strace.mjs: chatd under strace (which system calls it makes, in what order), and what a
// systemd unit's SystemCallFilter= lets through, read from systemd-analyze itself.
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { finished } from 'node:stream/promises';

/** The path of cmd, or null when it is not installed. */
export function which(cmd) {
    const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
    return r.status === 0 ? r.stdout.trim() : null;
}

/** Whether strace can trace chatd here: installed, ptrace allowed (a container may
 * forbid it), and no $CHATD_WRAPPER (strace would trace valgrind's calls, not chatd's). */
export function straceWorks() {
    if (!which('strace') || (process.env.CHATD_WRAPPER ?? '').trim())
        return false;
    return spawnSync('strace', ['-f', '-qq', '-o', '/dev/null', 'true']).status === 0;
}

/** The pid of chatd in a server started with a strace wrapper: strace's only child. */
export function tracedPid(server) {
    const pid = server.proc.pid;
    const kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/);
    if (kids.length !== 1 || !/^\d+$/.test(kids[0]))
        throw new Error(`strace ${pid} has children "${kids.join(' ')}", expected one`);
    return Number(kids[0]);
}

/**
 * Signals chatd itself (a signal to strace would make strace detach and kill it) and
 * waits until strace, which exits with chatd's status, is gone. Returns {code, signal}.
 */
export async function stopTraced(server, signal = 'SIGTERM', timeout = 60000) {
    const proc = server.proc;
    if (server.exitStatus === null)
        process.kill(tracedPid(server), signal);
    let timer;
    const gone = server.exitStatus !== null ? Promise.resolve()
        : new Promise((resolve) => proc.once('exit', resolve));
    const late = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`chatd under strace still running ${timeout} ms after ${signal}\n${server.logs()}`)), timeout);
    });
    try {
        await Promise.race([gone, late]);
    } finally {
        clearTimeout(timer);
    }
    await Promise.all([proc.stdout, proc.stderr].map((s) => finished(s).catch(() => {})));
    return { code: proc.exitCode, signal: proc.signalCode };
}

/** The system calls in an `strace -c` summary: Map name -> calls. */
export function parseSummary(text) {
    const calls = new Map();
    const lines = text.split('\n');
    const first = lines.findIndex((l) => /^-+ -+/.test(l));
    for (const line of lines.slice(first + 1)) {
        if (/^-+ -+/.test(line))
            break;
        const cols = line.trim().split(/\s+/);
        if (cols.length >= 5)
            calls.set(cols[cols.length - 1], Number(cols[3]));
    }
    return calls;
}

const groups = new Map();

/** The system calls of a systemd group (@name), groups inside it expanded. */
export function expandGroup(name) {
    if (groups.has(name))
        return groups.get(name);
    const out = execFileSync('systemd-analyze', ['syscall-filter', name], { encoding: 'utf8' });
    const calls = new Set();
    for (const line of out.split('\n').slice(1)) {
        const word = line.trim();
        if (!word || word.startsWith('#'))
            continue;
        for (const c of word.startsWith('@') ? expandGroup(word) : [word])
            calls.add(c);
    }
    groups.set(name, calls);
    return calls;
}

/**
 * The unit's filter as systemd builds it (systemd.exec(5)): the first SystemCallFilter=
 * decides the kind (an allow-list, or with "~" a deny-list); later lines of the same kind
 * add to the set, of the other kind take out of it; an empty value resets. A call named
 * with ":ERRNO" fails with that error instead of killing. Returns {allow (true: the set
 * is what may run), set, errnoCalls, errorNumber (SystemCallErrorNumber= or null)}.
 */
export function unitFilter(unitText) {
    let allow = null;
    let set = new Set();
    const errnoCalls = new Set();
    for (const m of unitText.matchAll(/^SystemCallFilter=(.*)$/gm)) {
        let value = m[1].trim();
        if (value === '') {
            allow = null;
            set = new Set();
            continue;
        }
        const deny = value.startsWith('~');
        value = value.replace(/^~/, '');
        const names = [];
        for (const word of value.split(/\s+/).filter(Boolean)) {
            const [name, errno] = word.split(':');
            const calls = name.startsWith('@') ? [...expandGroup(name)] : [name];
            if (deny && errno)
                calls.forEach((c) => errnoCalls.add(c));
            names.push(...calls);
        }
        if (allow === null) {
            allow = !deny;
            set = new Set(names);
        } else if (allow === !deny) {
            names.forEach((n) => set.add(n));
        } else {
            names.forEach((n) => set.delete(n));
        }
    }
    const errorNumber = /^SystemCallErrorNumber=(\S+)/m.exec(unitText)?.[1] ?? null;
    return { allow, set, errnoCalls, errorNumber };
}

/** Whether the filter lets call run (a call denied with ":ERRNO" does not). */
export function allows(filter, call) {
    return filter.allow === null || (filter.allow ? filter.set.has(call) : !filter.set.has(call));
}

/**
 * systemd's own reading of a unit file's filter, group by group: `systemd-analyze
 * security --offline` judges each group it knows. Returns Map @group -> whether some
 * call of it may run.
 */
export function securityVerdicts(unitPath) {
    const out = spawnSync('systemd-analyze', ['security', '--offline=yes', unitPath],
        { encoding: 'utf8' }).stdout ?? '';
    const verdicts = new Map();
    const re = /SystemCallFilter=~(@[\w-]+)\s+System call (allow|deny) list defined for service, and \1 is (not )?included/g;
    for (const [, group, kind, not] of out.matchAll(re))
        verdicts.set(group, kind === 'allow' ? !not : Boolean(not));
    return verdicts;
}

/** The calls of `used` the filter would kill the process for, sorted. */
export function killedBy(filter, used) {
    if (filter.allow === null || filter.errorNumber)
        return [];
    return [...used].filter((c) => !filter.errnoCalls.has(c) &&
        (filter.allow ? !filter.set.has(c) : filter.set.has(c))).sort();
}

/**
 * The environment for a traced chatd: LeakSanitizer (in a sanitizer build) stops the
 * process it checks with ptrace, which a traced process cannot be, and then fails the
 * exit; the leak check is left to the untraced runs.
 */
export function tracedEnv(env = {}) {
    const asan = [process.env.ASAN_OPTIONS, 'detect_leaks=0'].filter(Boolean).join(':');
    return { ...env, ASAN_OPTIONS: asan };
}
