// RPC between two clients, each given as LIB:SERIALIZER:URL (see pubsub.mjs).
//
//   node rpc.mjs --callee LIB:SER:URL --caller LIB:SER:URL [--realm realm1]
//
// The callee registers, under a unique prefix P:
//   P.echo      returns its args/kwargs;
//   P.progress  sends three progressive results [1], [2], [3] (when the
//               caller asked for them), then returns ['done'] {count: 3};
//   P.fail      raises the application error com.example.error.failed
//               with args ['it failed', 42] and kwargs {code: 'E42'}.
// The caller calls each one, and a procedure nobody registered. Prints
// what the caller got.

import { connect, parseArgs, plain, run } from './lib.mjs';
import * as payload from './payload.mjs';

function client(spec) {
    const m = /^(autobahn|wampy):(json|msgpack|cbor):(.+)$/.exec(spec || '');
    if (!m) throw new Error(`bad client spec ${spec} (want LIB:SERIALIZER:URL)`);
    return { lib: m[1], serializer: m[2], url: m[3] };
}

/** The outcome of a call as plain JSON. */
async function outcome(p) {
    try {
        const r = await p;
        return { ok: true, args: plain(r.args), kwargs: plain(r.kwargs) };
    } catch (e) {
        if (e && e.error) return { ok: false, error: e.error, args: plain(e.args), kwargs: plain(e.kwargs) };
        throw e;
    }
}

run(async () => {
    const { opt } = parseArgs();
    const realm = opt.realm || 'realm1';
    const callee = await connect({ ...client(opt.callee), realm });
    const caller = await connect({ ...client(opt.caller), realm });
    const p = `com.example.js.rpc.${process.pid}.${Date.now()}`;

    let receiveProgress = null;
    await callee.register(`${p}.echo`, ({ args, kwargs }) => ({ args, kwargs }));
    await callee.register(`${p}.progress`, async ({ details, progress }) => {
        receiveProgress = Boolean(details.receive_progress);
        if (receiveProgress) {
            for (let i = 1; i <= 3; i++) progress([i], {});
        }
        return { args: ['done'], kwargs: { count: 3 } };
    });
    await callee.register(`${p}.fail`, () => {
        throw { error: 'com.example.error.failed', args: ['it failed', 42], kwargs: { code: 'E42' } };
    });

    const echo = await outcome(caller.call(`${p}.echo`, payload.args(7), payload.kwargs(7)));
    const progressive = [];
    const final = await outcome(
        caller.call(`${p}.progress`, [], {}, (r) => progressive.push({ args: plain(r.args), kwargs: plain(r.kwargs) })),
    );
    const fail = await outcome(caller.call(`${p}.fail`, [], {}));
    const missing = await outcome(caller.call(`${p}.nobody`, [], {}));

    const result = {
        callee_welcome: plain(callee.welcome),
        caller_welcome: plain(caller.welcome),
        echo,
        receive_progress: receiveProgress,
        progressive,
        final,
        fail,
        missing,
    };
    await caller.close();
    await callee.close();
    return result;
});
