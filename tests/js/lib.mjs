// Shared by the scenario scripts in tests/js/: one small client interface
// over the two JavaScript WAMP libraries the end-to-end tests drive,
// Autobahn|JS and wampy.js, used exactly as their READMEs show (nothing in
// their behaviour is patched or worked around here).
//
// A scenario script prints ONE JSON object (its last stdout line) with what
// the clients observed; tests/js_clients.rs asserts on it. Exit status 0
// means "the scenario ran" (whatever it observed); anything unexpected is
// thrown, printed to stderr and exits 1. Every script is killed after
// SCRIPT_TIMEOUT_MS by the watchdog below, so it never hangs the test.

import autobahn from 'autobahn';
import nacl from 'tweetnacl';
import WebSocket from 'ws';
import { Wampy } from 'wampy';
import { JsonSerializer } from 'wampy/JsonSerializer.js';
import { MsgpackSerializer } from 'wampy/MsgpackSerializer.js';
import { CborSerializer } from 'wampy/CborSerializer.js';
import * as wampyCra from 'wampy/wampcra.js';
import * as wampyCS from 'wampy/cryptosign.js';

const SCRIPT_TIMEOUT_MS = 30000;

/** Parses `--key value` pairs (and bare `--flag`s) after the positionals. */
export function parseArgs(argv = process.argv.slice(2)) {
    const pos = [];
    const opt = {};
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        if (a.startsWith('--')) {
            const key = a.slice(2);
            if (i + 1 < argv.length && !argv[i + 1].startsWith('--')) {
                opt[key] = argv[++i];
            } else {
                opt[key] = true;
            }
        } else {
            pos.push(a);
        }
    }
    return { pos, opt };
}

/** Runs `main()`, prints its result as one JSON line, exits. */
export function run(main) {
    const watchdog = setTimeout(() => {
        console.error(`scenario timed out after ${SCRIPT_TIMEOUT_MS} ms`);
        process.exit(2);
    }, SCRIPT_TIMEOUT_MS);
    main().then(
        (result) => {
            clearTimeout(watchdog);
            process.stdout.write(JSON.stringify(result) + '\n', () => process.exit(0));
        },
        (err) => {
            clearTimeout(watchdog);
            console.error('scenario failed:', err && err.stack ? err.stack : err);
            process.exit(1);
        },
    );
}

/** Resolves after `ms`. */
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Waits until `pred()` is true (polling), or fails after `ms`; `what` (a
 * string, or a function called at the timeout) says what was awaited.
 */
export async function waitFor(pred, ms, what) {
    const end = Date.now() + ms;
    while (!pred()) {
        if (Date.now() > end) {
            throw new Error(`timed out after ${ms} ms waiting for ${typeof what === 'function' ? what() : what}`);
        }
        await sleep(10);
    }
}

/** A JSON-safe copy (Buffers/Uint8Arrays as {hex}, undefined dropped). */
export function plain(v) {
    if (v === undefined || v === null) return v ?? null;
    if (v instanceof Uint8Array) return { hex: Buffer.from(v).toString('hex') };
    if (Array.isArray(v)) return v.map((x) => (x === undefined ? null : plain(x)));
    if (typeof v === 'bigint') return Number(v);
    if (typeof v === 'object') {
        const o = {};
        for (const [k, x] of Object.entries(v)) {
            if (x !== undefined) o[k] = plain(x);
        }
        return o;
    }
    return v;
}

/**
 * Where to connect. `ws://...` is WebSocket; `rs://host:port` and
 * `unix:/path` are RawSocket (Autobahn|JS only: wampy.js is WebSocket only).
 */
function endpoint(url) {
    if (url.startsWith('ws://') || url.startsWith('wss://')) return { kind: 'websocket', url };
    let m = /^rs:\/\/([^:/]+):(\d+)$/.exec(url);
    if (m) return { kind: 'rawsocket', host: m[1], port: Number(m[2]) };
    m = /^unix:(.+)$/.exec(url);
    if (m) return { kind: 'rawsocket', path: m[1] };
    throw new Error(`unsupported URL ${url}`);
}

/** The ed25519 key pair of a 32-byte hex seed. */
export function keyPair(seedHex) {
    return nacl.sign.keyPair.fromSeed(Uint8Array.from(Buffer.from(seedHex, 'hex')));
}

/** A fresh ed25519 key: `{privkey: hex seed, pubkey: hex}`. */
export function newKey() {
    const seed = nacl.randomBytes(32);
    const kp = nacl.sign.keyPair.fromSeed(seed);
    return { privkey: Buffer.from(seed).toString('hex'), pubkey: Buffer.from(kp.publicKey).toString('hex') };
}

/**
 * Connects and joins. `o`: `{lib: 'autobahn'|'wampy', url, realm,
 * serializer: 'json'|'msgpack'|'cbor', auth?: {method, authid, ticket,
 * secret, privkey}}`. Resolves with a client (see `AutobahnClient`,
 * `WampyClient`) or rejects with an `Error` whose `abort` is
 * `{reason, message}` if the router refused the session.
 */
export async function connect(o) {
    if (o.lib === 'autobahn') return AutobahnClient.connect(o);
    if (o.lib === 'wampy') return WampyClient.connect(o);
    throw new Error(`unknown client library ${o.lib}`);
}

/** Rejects with an Error carrying `abort: {reason, message}`. */
function refused(reason, message) {
    const e = new Error(`session refused: ${reason}: ${message}`);
    e.abort = { reason: reason ?? null, message: message ?? null };
    return e;
}

// ---------------------------------------------------------------- Autobahn|JS

class AutobahnClient {
    static connect(o) {
        const ep = endpoint(o.url);
        const serializer = {
            json: () => new autobahn.serializer.JSONSerializer(),
            msgpack: () => new autobahn.serializer.MsgpackSerializer(),
            cbor: () => new autobahn.serializer.CBORSerializer(),
        }[o.serializer];
        if (!serializer) throw new Error(`Autobahn|JS has no serializer ${o.serializer}`);
        if (ep.kind === 'rawsocket' && o.serializer !== 'json') {
            // lib/transport/rawsocket.js negotiates JSON only.
            throw new Error('Autobahn|JS RawSocket speaks JSON only');
        }
        const transport =
            ep.kind === 'websocket'
                ? { type: 'websocket', url: ep.url, serializers: [serializer()] }
                : { type: 'rawsocket', host: ep.host, port: ep.port, path: ep.path };
        const options = {
            realm: o.realm,
            transports: [transport],
            max_retries: 0,
            retry_if_unreachable: false,
        };
        const a = o.auth;
        if (a) {
            options.authmethods = [a.method];
            if (a.authid) options.authid = a.authid;
            if (a.method === 'cryptosign') {
                options.authextra = { pubkey: Buffer.from(keyPair(a.privkey).publicKey).toString('hex') };
            }
            options.onchallenge = (session, method, extra) => {
                if (method === 'ticket') return a.ticket;
                if (method === 'wampcra') {
                    const key = extra.salt
                        ? autobahn.auth_cra.derive_key(a.secret, extra.salt, extra.iterations, extra.keylen)
                        : a.secret;
                    return autobahn.auth_cra.sign(key, extra.challenge);
                }
                if (method === 'cryptosign') return autobahn.auth_cryptosign.sign_challenge(keyPair(a.privkey), extra);
                throw new Error(`unexpected challenge ${method}`);
            };
        }
        const conn = new autobahn.Connection(options);
        return new Promise((resolve, reject) => {
            let opened = false;
            conn.onopen = (session, details) => {
                opened = true;
                resolve(new AutobahnClient(conn, session, details));
            };
            conn.onclose = (reason, details) => {
                if (!opened) reject(refused(details.reason ?? reason, details.message));
                return true; // never retry
            };
            conn.open();
        });
    }

    constructor(conn, session, details) {
        this.lib = 'autobahn';
        this.conn = conn;
        this.session = session;
        this.welcome = {
            session: session.id,
            authid: details.authid,
            authrole: details.authrole,
            authmethod: details.authmethod,
            authprovider: details.authprovider,
        };
    }

    /** `onEvent({args, kwargs, details})`. */
    async subscribe(topic, onEvent, options) {
        await this.session.subscribe(
            topic,
            (args, kwargs, details) => onEvent({ args: args ?? [], kwargs: kwargs ?? {}, details: details ?? {} }),
            options,
        );
    }

    /** Acknowledged publish; resolves with the publication id. */
    async publish(topic, args, kwargs, options = {}) {
        const p = await this.session.publish(topic, args, kwargs, { acknowledge: true, ...options });
        return p.id;
    }

    /**
     * `handler({args, kwargs, details, progress(args, kwargs)})` returns
     * `{args, kwargs}` or throws `{error, args, kwargs}`.
     */
    async register(procedure, handler) {
        await this.session.register(procedure, async (args, kwargs, details) => {
            try {
                // Autobahn's Invocation has a `progress` function when the
                // caller asked for progressive results (receive_progress).
                const r = await handler({
                    args: args ?? [],
                    kwargs: kwargs ?? {},
                    details: { procedure: details.procedure, receive_progress: typeof details.progress === 'function' },
                    progress: (a, k) => details.progress(a, k),
                });
                return new autobahn.Result(r.args ?? [], r.kwargs ?? {});
            } catch (e) {
                if (e && e.error) throw new autobahn.Error(e.error, e.args ?? [], e.kwargs ?? {});
                throw e;
            }
        });
    }

    /**
     * Resolves `{args, kwargs}`; rejects with `{error, args, kwargs}`.
     * `onProgress({args, kwargs})` gets progressive results.
     */
    call(procedure, args, kwargs, onProgress) {
        const norm = (r) => {
            if (r instanceof autobahn.Result) return { args: r.args ?? [], kwargs: r.kwargs ?? {} };
            return { args: r === null || r === undefined ? [] : [r], kwargs: {} };
        };
        return new Promise((resolve, reject) => {
            this.session
                .call(procedure, args, kwargs, onProgress ? { receive_progress: true } : {})
                .then(
                    (r) => resolve(norm(r)),
                    (e) => reject({ error: e.error, args: e.args ?? [], kwargs: e.kwargs ?? {} }),
                    (p) => onProgress && onProgress(norm(p)),
                );
        });
    }

    async close() {
        await new Promise((resolve) => {
            this.conn.onclose = () => {
                resolve();
                return true;
            };
            this.conn.close();
        });
    }
}

// ---------------------------------------------------------------- wampy.js

class WampyClient {
    static async connect(o) {
        const ep = endpoint(o.url);
        if (ep.kind !== 'websocket') throw new Error('wampy.js speaks WebSocket only');
        const serializer = {
            json: () => new JsonSerializer(),
            msgpack: () => new MsgpackSerializer(),
            cbor: () => new CborSerializer(),
        }[o.serializer];
        if (!serializer) throw new Error(`wampy.js has no serializer ${o.serializer}`);
        const options = {
            ws: WebSocket,
            realm: o.realm,
            serializer: serializer(),
            autoReconnect: false,
        };
        const a = o.auth;
        if (a) {
            options.authmethods = [a.method];
            options.authid = a.authid;
            if (a.method === 'ticket') options.onChallenge = () => a.ticket;
            if (a.method === 'wampcra') options.onChallenge = wampyCra.sign(a.secret);
            if (a.method === 'cryptosign') {
                options.authextra = { pubkey: Buffer.from(keyPair(a.privkey).publicKey).toString('hex') };
                options.onChallenge = wampyCS.sign(a.privkey);
            }
        }
        const w = new Wampy(ep.url, options);
        let details;
        try {
            details = await w.connect();
        } catch (e) {
            if (e && e.errorUri) throw refused(e.errorUri, e.details && e.details.message);
            throw e;
        }
        return new WampyClient(w, details);
    }

    constructor(w, details) {
        this.lib = 'wampy';
        this.w = w;
        this.welcome = {
            session: w.getSessionId(),
            authid: details.authid,
            authrole: details.authrole,
            authmethod: details.authmethod,
            authprovider: details.authprovider,
        };
    }

    async subscribe(topic, onEvent, options) {
        await this.w.subscribe(
            topic,
            (e) => onEvent({ args: e.argsList ?? [], kwargs: e.argsDict ?? {}, details: e.details ?? {} }),
            options,
        );
    }

    async publish(topic, args, kwargs, options = {}) {
        // wampy always asks for acknowledge.
        const r = await this.w.publish(topic, { argsList: args, argsDict: kwargs }, options);
        return r.publicationId;
    }

    async register(procedure, handler) {
        await this.w.register(procedure, async (inv) => {
            try {
                const r = await handler({
                    args: inv.argsList ?? [],
                    kwargs: inv.argsDict ?? {},
                    details: inv.details ?? {},
                    progress: (a, k) => inv.result_handler({ argsList: a, argsDict: k, options: { progress: true } }),
                });
                return { argsList: r.args ?? [], argsDict: r.kwargs ?? {} };
            } catch (e) {
                if (e && e.error) throw { error: e.error, argsList: e.args ?? [], argsDict: e.kwargs ?? {} };
                throw e;
            }
        });
    }

    async call(procedure, args, kwargs, onProgress) {
        const opts = onProgress
            ? { progress_callback: (p) => onProgress({ args: p.argsList ?? [], kwargs: p.argsDict ?? {} }) }
            : undefined;
        try {
            const r = await this.w.call(procedure, { argsList: args, argsDict: kwargs }, opts);
            return { args: r.argsList ?? [], kwargs: r.argsDict ?? {} };
        } catch (e) {
            if (e && e.errorUri) throw { error: e.errorUri, args: e.argsList ?? [], kwargs: e.argsDict ?? {} };
            throw e;
        }
    }

    async close() {
        await this.w.disconnect();
    }
}
