// The application payload every scenario sends; tests/js_clients.rs
// compares what arrived with its own copy (`expected_args`/`expected_kwargs`).
// JSON-safe values only (both libraries' JSON serializers must carry them).

/** Positional arguments of message number `i`. */
export function args(i) {
    return [i, 'héllo wörld € 😀 "quoted" \\', 2.5, -1.25e-7, true, null, [1, [2, 3], []], { k: 'v', empty: {} }, 9007199254740991, -42];
}

/** Keyword arguments of message number `i`. */
export function kwargs(i) {
    return { i, name: 'Alice', nested: { list: [1, 2, 3], flag: false }, big: -9007199254740991 };
}
