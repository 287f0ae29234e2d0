// Authentication with each library's own authenticator helpers.
//
//   node auth.mjs gen
//       Prints two fresh cryptosign keys: {cryptosign: [{privkey, pubkey}, ...]}
//       (hex ed25519 seed and public key).
//
//   node auth.mjs --lib autobahn|wampy --serializer S --url URL --method M
//                 [--realm realm1] [--authid ID] [--ticket T] [--secret S] [--privkey HEX]
//       One attempt with authmethod M (ticket, wampcra, cryptosign). Prints
//       {joined: true, welcome: {...}, rpc: ...} where rpc is the result of
//       calling a procedure the session registered itself (proves the
//       session works), or {joined: false, reason, message} for an ABORT.

import { connect, newKey, parseArgs, plain, run } from './lib.mjs';

run(async () => {
    const { pos, opt } = parseArgs();
    if (pos[0] === 'gen') return { cryptosign: [newKey(), newKey()] };
    const auth = { method: opt.method, authid: opt.authid, ticket: opt.ticket, secret: opt.secret, privkey: opt.privkey };
    let c;
    try {
        c = await connect({ lib: opt.lib, serializer: opt.serializer, url: opt.url, realm: opt.realm || 'realm1', auth });
    } catch (e) {
        if (e.abort) return { joined: false, ...e.abort };
        throw e;
    }
    const proc = `com.example.js.auth.${process.pid}.${Date.now()}.echo`;
    await c.register(proc, ({ args }) => ({ args }));
    const r = await c.call(proc, ['echo', 42], {});
    const result = { joined: true, welcome: plain(c.welcome), rpc: plain(r.args) };
    await c.close();
    return result;
});
