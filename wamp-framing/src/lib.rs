//! wamp-framing (being implemented)
