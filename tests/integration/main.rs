//! lakewriter's integration tests, gathered in one test binary to keep link time down.
//!
//! `scenarios` is one suite written against a [`support::Lake`]; each backend runs all of it.

mod backfill;
mod bad_input;
mod cli;
mod crash;
mod deploy;
mod evolution;
mod faults;
mod inputs;
mod merge;
mod notify;
mod optimize;
mod query_snippets;
mod restore;
mod scenarios;
mod security;
mod support;
mod table_features;
