//! What the command-line tests share: the suite on the embedded default, every service in one
//! process, on a port of its own.

/// Starts the suite with its SQLite files under `dir/data`, the admin port when `admin`, and
/// a simulated clock from `dev_clock` when given.
pub async fn suite(
    dir: &std::path::Path,
    admin: bool,
    dev_clock: Option<chrono::DateTime<chrono::Utc>>,
) -> petition_host::Running {
    petition_telemetry::init_for_tests();
    let mut cfg = petition_host::HostConfig::new("suite");
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    if admin {
        cfg.admin_listen = Some("127.0.0.1:0".parse().unwrap());
    }
    cfg.dev = true;
    cfg.dev_clock = dev_clock;
    cfg.data_dir = dir.join("data");
    petition_host::start(
        cfg,
        None,
        None,
        &[
            &petition_analytics::Analytics::default(),
            &petition_supervision::Supervision::default(),
            &petition_routing::Routing::default(),
            &petition_intake::Intake::default(),
        ],
    )
    .await
    .expect("the suite starts")
}
