//! The intake service: registers petitions from every channel (Art. 19-23), flags group,
//! leapfrog and repeat petitions, keeps the petitioner registry with personal data sealed, and
//! publishes `petition.intake.v1` through its outbox.

pub mod crypto;
pub mod server;
pub mod service;
pub mod store;
