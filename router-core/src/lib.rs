//! router-core (being implemented)
