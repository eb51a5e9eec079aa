//! City and district deployments as one case pipeline (DESIGN §5b, ADR 0016).
//!
//! Down: when routing sends a case to an organ a peer deployment serves, intake (which holds
//! the petition and its sealed personal data) opens an exchange in the transaction that records
//! the routing step, and the [`Deliverer`] registers the case at the peer's intake under our
//! name and case number, until it is done, a conflict or refused.
//!
//! Up: the peer's intake keeps a gapless feed of the steps of the cases it got from us
//! (`peer_feed`), and our [`Watcher`] pulls it with `WatchCases(since)`. Each step is applied
//! here once, in the transaction that moves our cursor: routing's steps (acceptance, reply,
//! completion report) go out as `peer.progressed` for routing to apply to our copy with the
//! peer's dates; every other step goes into our timeline at once.

mod deliver;
mod store;
mod watch;

pub use deliver::{BearerToken, Deliverer, client};
pub use store::{
    EXISTING_CASE, ExchangeFilter, ExchangeRow, ExchangeStore, Exchanges, status_from_pb,
};
pub use watch::Watcher;
