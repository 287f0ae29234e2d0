//! Newtype identifiers.
//!
//! WAMP IDs are integers in `[1, 2^53]` (so they survive a round trip through
//! an IEEE double in JavaScript peers). Each kind of ID has its own type so a
//! subscription id can never be passed where a request id is expected.

use std::fmt;

/// Largest valid WAMP ID: 2^53.
pub const MAX_ID: u64 = 1 << 53;

macro_rules! wamp_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(u64);

        impl $name {
            /// Wraps `v` if it is a valid WAMP ID (`0..=2^53`; 0 is tolerated on
            /// input because some peers use it for "no request").
            pub const fn new(v: u64) -> Option<Self> {
                if v <= MAX_ID { Some(Self(v)) } else { None }
            }
            /// Wraps `v`, clamping nothing: only for values already known valid.
            pub const fn from_valid(v: u64) -> Self {
                debug_assert!(v <= MAX_ID);
                Self(v)
            }
            /// The raw integer.
            pub const fn get(self) -> u64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
    };
}

wamp_id!(
    /// Session ID: global scope, chosen randomly by the router.
    SessionId
);
wamp_id!(
    /// Request ID: session scope, chosen by the sender of a request.
    RequestId
);
wamp_id!(
    /// Subscription ID: router scope.
    SubscriptionId
);
wamp_id!(
    /// Registration ID: router scope.
    RegistrationId
);
wamp_id!(
    /// Publication ID: global scope, chosen randomly by the router.
    PublicationId
);
