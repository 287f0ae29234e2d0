// Pub/sub between two clients, each given as LIB:SERIALIZER:URL
// (LIB autobahn|wampy; URL ws://..., rs://host:port, unix:/path).
//
//   node pubsub.mjs --sub LIB:SER:URL --pub LIB:SER:URL [--realm realm1]
//
// The subscriber subscribes to a unique TOPIC (exact, no options: wampy
// sends {match: undefined, get_retained: undefined}) and to the prefix
// TOPIC.sub (wampy: {match: 'prefix', get_retained: undefined}); the
// publisher sends three acknowledged events to TOPIC and one to
// TOPIC.sub.deep. Prints what each side saw.

import { connect, parseArgs, plain, run, waitFor } from './lib.mjs';
import * as payload from './payload.mjs';

function client(spec) {
    const m = /^(autobahn|wampy):(json|msgpack|cbor):(.+)$/.exec(spec || '');
    if (!m) throw new Error(`bad client spec ${spec} (want LIB:SERIALIZER:URL)`);
    return { lib: m[1], serializer: m[2], url: m[3] };
}

run(async () => {
    const { opt } = parseArgs();
    const realm = opt.realm || 'realm1';
    const sub = await connect({ ...client(opt.sub), realm });
    const pub = await connect({ ...client(opt.pub), realm });
    const topic = `com.example.js.${sub.lib}.${process.pid}.${Date.now()}`;

    const exact = [];
    const prefix = [];
    await sub.subscribe(topic, (e) => exact.push({ args: plain(e.args), kwargs: plain(e.kwargs) }));
    await sub.subscribe(`${topic}.sub`, (e) => prefix.push({ args: plain(e.args), kwargs: plain(e.kwargs) }), {
        match: 'prefix',
    });

    const publications = [];
    for (let i = 0; i < 3; i++) {
        publications.push(plain(await pub.publish(topic, payload.args(i), payload.kwargs(i))));
    }
    publications.push(plain(await pub.publish(`${topic}.sub.deep`, payload.args(3), payload.kwargs(3))));
    await waitFor(
        () => exact.length >= 3 && prefix.length >= 1,
        10000,
        () => `the events; got ${JSON.stringify({ exact, prefix })}`,
    );

    const result = {
        sub_welcome: plain(sub.welcome),
        pub_welcome: plain(pub.welcome),
        publications,
        exact,
        prefix,
    };
    await pub.close();
    await sub.close();
    return result;
});
