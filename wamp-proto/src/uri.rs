//! URI validation per the WAMP spec. (Being implemented.)
