// What wampy.js's SUBSCRIBE options mean to the router. wampy 8 always
// sends {match, get_retained} and leaves them `undefined` when not given,
// which its MessagePack (msgpackr) and CBOR (cbor-x) serializers encode as
// ext type 0 (`d4 00 00`) and simple value 23 (`f7`); undefined must mean
// "absent" (exact match, no retained event), exactly as over JSON.
//
//   node subscribe_options.mjs --serializer S --url ws://... [--realm realm1]
//
// An Autobahn|JS (JSON) session publishes a retained event on TOPIC first.
// Then one wampy session subscribes to TOPIC with no options and to the
// prefix TOPIC.p with {match: 'prefix'}, and a second one (a session
// subscribing twice to one topic gets the same subscription) to TOPIC with
// {get_retained: true};
// the publisher sends one live event to TOPIC and one to TOPIC.p.x. The
// Autobahn session then asks the meta API for the match policy of each
// subscription. Prints what wampy received and what the meta API said.

import { connect, parseArgs, plain, run, sleep, waitFor } from './lib.mjs';

run(async () => {
    const { opt } = parseArgs();
    const realm = opt.realm || 'realm1';
    const topic = `com.example.js.subopts.${process.pid}.${Date.now()}`;
    const other = await connect({ lib: 'autobahn', serializer: 'json', url: opt.url, realm });
    await other.publish(topic, ['retained'], {}, { retain: true });

    const w = await connect({ lib: 'wampy', serializer: opt.serializer, url: opt.url, realm });
    const w2 = await connect({ lib: 'wampy', serializer: opt.serializer, url: opt.url, realm });
    const plainSub = [];
    const retainedSub = [];
    const prefixSub = [];
    const record = (list) => (e) => list.push(plain(e.args));
    await w.subscribe(topic, record(plainSub));
    await w2.subscribe(topic, record(retainedSub), { get_retained: true });
    await w.subscribe(`${topic}.p`, record(prefixSub), { match: 'prefix' });

    await other.publish(topic, ['live'], {});
    await other.publish(`${topic}.p.x`, ['prefixed'], {});
    await waitFor(
        () => plainSub.length >= 1 && retainedSub.length >= 2 && prefixSub.length >= 1,
        10000,
        () => `the events; got ${JSON.stringify({ plainSub, retainedSub, prefixSub })}`,
    );
    // Anything wrongly delivered would have come before the live events
    // (one publisher, ordered); a short grace catches stragglers anyway.
    await sleep(100);

    const meta = async (...args) => plain((await other.call(...args)).args);
    const exactId = (await meta('wamp.subscription.lookup', [topic], {}))[0];
    const prefixId = (await meta('wamp.subscription.lookup', [`${topic}.p`, { match: 'prefix' }], {}))[0];
    const exactGet = exactId ? (await meta('wamp.subscription.get', [exactId], {}))[0] : null;
    const prefixGet = prefixId ? (await meta('wamp.subscription.get', [prefixId], {}))[0] : null;

    const result = {
        plain: plainSub,
        get_retained: retainedSub,
        prefix: prefixSub,
        exact_match: exactGet && exactGet.match,
        prefix_match: prefixGet && prefixGet.match,
    };
    await w2.close();
    await w.close();
    await other.close();
    return result;
});
