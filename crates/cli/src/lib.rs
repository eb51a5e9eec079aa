//! What the `petition` command line shares with others: the shape of an exported petition.

pub mod record;
