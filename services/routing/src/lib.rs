//! The routing service: decides who has authority over each registered petition (Art. 22,
//! 28-31), sends, diverts, links or triages it, and runs the department inbox — accept (受理),
//! object (异议) within 5 working days, and the bureau's answers.

pub mod consumer;
pub mod server;
pub mod service;
pub mod store;
pub mod workflow;
