//! The deployment files, checked without a container engine: the compose file as
//! `docker-compose config` reads it, the Prometheus configuration and alert rules by promtool
//! (with the rules' own unit tests), the Kubernetes manifests as `kubectl kustomize` builds
//! them, the dashboard and the alerts against the metrics the
//! services record, and every service of the compose file started as a process with the
//! environment compose gives it, serving and talking to the others, and sending one
//! petition's trace across all four to where the collector would be.
//!
//! The tools come from Debian's packages (docker-compose, prometheus, prometheus-alertmanager,
//! kubernetes-client). Outside CI a missing tool skips its check with a note; under CI=true it
//! fails.

use chrono::TimeZone;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use petition_auth::{Principal, Role, TokenKeys};
use petition_e2e::samples;
use petition_proto::v1 as pb;
use petition_testkit::process::ServiceProcess;
use petition_testkit::{TestDatabase, TestRedis, in_ci, require};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use yaml_rust2::{Yaml, YamlLoader};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn deploy(file: &str) -> PathBuf {
    repo().join("deploy").join(file)
}

/// `tool` with `args`, or `None` when the tool is not installed (outside CI).
fn run_tool(tool: &str, args: &[&str], dir: &Path) -> Option<std::process::Output> {
    match Command::new(tool).args(args).current_dir(dir).output() {
        Ok(out) => Some(out),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !in_ci() => {
            eprintln!(
                "skipped: {tool} is not installed (Debian: apt-get install docker-compose prometheus prometheus-alertmanager kubernetes-client)"
            );
            None
        }
        Err(e) => panic!("{tool}: {e}"),
    }
}

fn succeeded(tool: &str, out: &std::process::Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{tool} failed:\n{text}");
    text
}

/// The compose file as compose resolves it, with `.env.example` filled in as an operator
/// would: anchors merged, `${…}` values put in.
fn resolved_compose(data_key: &str, token_key: &str, files: &[&str]) -> Option<Yaml> {
    let dir = tempfile::tempdir().unwrap();
    for file in files {
        std::fs::copy(deploy(file), dir.path().join(file)).unwrap();
    }
    let example = std::fs::read_to_string(deploy(".env.example")).unwrap();
    let env: String = example
        .lines()
        .map(|l| match l {
            "POSTGRES_PASSWORD=" => "POSTGRES_PASSWORD=compose-test".to_owned(),
            "GRAFANA_ADMIN_PASSWORD=" => "GRAFANA_ADMIN_PASSWORD=compose-test".to_owned(),
            "PETITION_DATA_KEY=" => format!("PETITION_DATA_KEY={data_key}"),
            "PETITION_TOKEN_KEY=" => format!("PETITION_TOKEN_KEY={token_key}"),
            other => other.to_owned(),
        })
        .map(|l| l + "\n")
        .collect();
    assert!(
        !env.lines()
            .filter(|l| !l.starts_with('#'))
            .any(|l| l.split_once('=').is_some_and(|(_, v)| v.is_empty())),
        ".env.example asks for a value this test does not fill in:\n{env}"
    );
    // and the optional one an operator sets for TLS
    let env = env + "PETITION_TLS_DOMAIN=petition.internal\n";
    std::fs::write(dir.path().join(".env"), env).unwrap();
    let mut args = Vec::new();
    for file in files {
        args.extend(["-f", file]);
    }
    args.push("config");
    let out = run_tool("docker-compose", &args, dir.path())?;
    let text = succeeded("docker-compose config", &out);
    let mut docs = YamlLoader::load_from_str(&text).expect("docker-compose prints YAML");
    Some(docs.remove(0))
}

fn text(y: &Yaml) -> String {
    match y {
        Yaml::String(s) | Yaml::Real(s) => s.clone(),
        Yaml::Integer(i) => i.to_string(),
        Yaml::Boolean(b) => b.to_string(),
        _ => String::new(),
    }
}

fn strings(y: &Yaml) -> Vec<String> {
    y.as_vec()
        .map(|v| v.iter().map(text).collect())
        .unwrap_or_default()
}

fn services(compose: &Yaml) -> Vec<(String, &Yaml)> {
    compose["services"]
        .as_hash()
        .expect("services")
        .iter()
        .map(|(k, v)| (text(k), v))
        .collect()
}

/// The binaries the Dockerfile puts into the image.
fn image_binaries() -> BTreeSet<String> {
    let dockerfile = std::fs::read_to_string(deploy("Dockerfile")).unwrap();
    let copy = dockerfile
        .split("COPY --from=build")
        .nth(1)
        .expect("the runtime stage copies the binaries from the build stage");
    let copy = copy.split("\n#").next().unwrap();
    copy.split_whitespace()
        .filter_map(|w| w.strip_prefix("/usr/local/bin/"))
        .filter(|b| !b.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The Dockerfile cannot be built here (no container engine), so what it asks of Cargo is
/// checked against the workspace: every package it builds exists, and every binary it copies
/// is a binary target of one of them.
#[test]
fn the_dockerfile_builds_packages_of_this_workspace_and_copies_their_binaries() {
    let dockerfile = std::fs::read_to_string(deploy("Dockerfile")).unwrap();
    let build = dockerfile
        .split("RUN cargo build --release --locked")
        .nth(1)
        .expect("the build stage runs cargo build")
        .split("&&")
        .next()
        .unwrap();
    let packages: Vec<&str> = build
        .split_whitespace()
        .filter(|w| w.starts_with("petition"))
        .collect();
    let mut bins = BTreeSet::new();
    for package in &packages {
        let manifest = ["services", "crates"]
            .iter()
            .flat_map(|d| std::fs::read_dir(repo().join(d)).unwrap().flatten())
            .map(|e| e.path().join("Cargo.toml"))
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .find(|m| m.contains(&format!("name = \"{package}\"")))
            .unwrap_or_else(|| panic!("the Dockerfile builds {package}, not in the workspace"));
        for part in manifest.split("[[bin]]").skip(1) {
            let name = part
                .split("name = \"")
                .nth(1)
                .and_then(|n| n.split('"').next())
                .unwrap();
            bins.insert(name.to_owned());
        }
    }
    assert_eq!(packages.len(), 8, "{packages:?}");
    assert_eq!(bins, image_binaries(), "built versus copied into the image");
    // Its bases: an earlier stage, or an official image pinned to a version.
    let mut stages = BTreeSet::new();
    for line in dockerfile.lines().filter(|l| l.starts_with("FROM ")) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let image = words[1];
        if !stages.contains(image) {
            let (repo, tag) = image.split_once(':').unwrap_or((image, ""));
            assert!(["rust", "debian"].contains(&repo), "{line}");
            assert!(!tag.is_empty() && !tag.starts_with("latest"), "{line}");
        }
        if let Some(alias) = words.iter().position(|w| w.eq_ignore_ascii_case("AS")) {
            stages.insert(words[alias + 1].to_owned());
        }
    }
}

#[test]
fn the_compose_file_validates_and_names_only_images_built_here_or_well_known() {
    let Some(compose) = resolved_compose(
        "a2V5",
        "token-key-of-at-least-32-bytes-long!",
        &["docker-compose.yml"],
    ) else {
        return;
    };
    let binaries = image_binaries();
    for b in [
        "petition-intake",
        "petition-routing",
        "petition-supervision",
        "petition-analytics",
        "petition-suite",
        "petition",
    ] {
        assert!(binaries.contains(b), "the image lacks {b}: {binaries:?}");
    }
    // Public images, pinned: the database, the cache, and the observability stack.
    let well_known = [
        "postgres",
        "redis",
        "prom/alertmanager",
        "otel/opentelemetry-collector-contrib",
        "jaegertracing/all-in-one",
        "prom/prometheus",
        "grafana/grafana",
    ];
    let mut ours = Vec::new();
    for (name, s) in services(&compose) {
        let image = text(&s["image"]);
        if !s["build"].is_badvalue() {
            assert_eq!(
                text(&s["build"]["dockerfile"]),
                "deploy/Dockerfile",
                "{name}"
            );
            assert_eq!(image, "petition-pipeline:latest", "{name}");
            let binary = strings(&s["entrypoint"]).join(" ");
            assert!(
                binaries.contains(&binary),
                "{name} runs {binary:?}, not in the image"
            );
            // health, restarts, limits: what an ops team relies on
            assert_eq!(
                strings(&s["healthcheck"]["test"])[..3],
                ["CMD", "petition", "health"],
                "{name}"
            );
            assert_eq!(text(&s["restart"]), "unless-stopped", "{name}");
            assert!(
                !text(&s["deploy"]["resources"]["limits"]["memory"]).is_empty(),
                "{name} has no memory limit"
            );
            ours.push(name);
        } else {
            let (repo, tag) = image.rsplit_once(':').unwrap_or((&image, ""));
            assert!(
                well_known.contains(&repo),
                "{name} uses {image}, neither built here nor a well-known public image"
            );
            assert!(
                !tag.is_empty() && tag != "latest",
                "{name}: pin {image} to a version"
            );
        }
    }
    ours.sort();
    assert_eq!(
        ours,
        [
            "analytics",
            "console",
            "intake",
            "open311",
            "routing",
            "suite",
            "supervision"
        ]
    );
    assert_eq!(
        strings(&compose["services"]["suite"]["profiles"]),
        ["suite"]
    );
    // Each service gets the secrets it reads and no other: the data key intake alone (and the
    // suite), the database's password only inside its URL, Grafana's only Grafana.
    for (name, s) in services(&compose) {
        let env: BTreeSet<String> = s["environment"]
            .as_hash()
            .map(|h| h.keys().map(text).collect())
            .unwrap_or_default();
        assert_eq!(
            env.contains("PETITION_DATA_KEY"),
            ["intake", "suite"].contains(&name.as_str()),
            "{name}: {env:?}"
        );
        assert!(
            !env.contains("POSTGRES_PASSWORD") || name == "postgres",
            "{name}"
        );
        assert!(
            !env.contains("GF_SECURITY_ADMIN_PASSWORD") || name == "grafana",
            "{name}"
        );
    }
    // Redis keeps its streams across a restart.
    assert!(strings(&compose["services"]["redis"]["command"]).contains(&"--appendonly".into()));
}

#[test]
fn tls_is_one_more_compose_file_that_gives_every_service_its_certificate() {
    let Some(compose) = resolved_compose(
        "a2V5",
        "token-key-of-at-least-32-bytes-long!",
        &["docker-compose.yml", "docker-compose.tls.yml"],
    ) else {
        return;
    };
    for (name, s) in services(&compose) {
        if s["build"].is_badvalue() || !s["profiles"].is_badvalue() {
            continue;
        }
        let env = &s["environment"];
        assert_eq!(
            text(&env["PETITION_TLS_CERT"]),
            "/etc/petition-tls/server.pem",
            "{name}"
        );
        assert_eq!(text(&env["PETITION_TLS_DOMAIN"]), "petition.internal");
        // merged with, not replacing, what the main file gives
        assert!(!text(&env["PETITION_DATABASE_URL"]).is_empty(), "{name}");
        let mounts = strings(&s["volumes"]).join(" ");
        assert!(
            mounts.contains(":/etc/petition-tls:ro") && mounts.contains(":/etc/petition:ro"),
            "{name}: {mounts}"
        );
    }
}

#[test]
fn the_alertmanager_configuration_passes_amtool() {
    let Some(out) = run_tool(
        "amtool",
        &["check-config", "alertmanager/alertmanager.yml"],
        &deploy(""),
    ) else {
        return;
    };
    succeeded("amtool check-config", &out);
}

#[test]
fn the_prometheus_configuration_and_alert_rules_pass_promtool() {
    let dir = deploy("prometheus");
    for args in [
        &["check", "config", "prometheus.yml"][..],
        &["check", "rules", "alerts.yml"],
        &["test", "rules", "alerts_test.yml"],
    ] {
        let Some(out) = run_tool("promtool", args, &dir) else {
            return;
        };
        succeeded(&format!("promtool {}", args.join(" ")), &out);
    }
}

#[test]
fn the_kubernetes_manifests_build_and_every_service_has_probes_limits_and_a_disruption_budget() {
    let Some(out) = run_tool("kubectl", &["kustomize", "deploy/k8s"], &repo()) else {
        return;
    };
    let docs = YamlLoader::load_from_str(&succeeded("kubectl kustomize", &out)).unwrap();
    let of =
        |kind: &str| -> Vec<&Yaml> { docs.iter().filter(|d| text(&d["kind"]) == kind).collect() };
    let binaries = image_binaries();
    let mut deployed = Vec::new();
    for d in of("Deployment") {
        let name = text(&d["metadata"]["name"]);
        assert_eq!(text(&d["metadata"]["namespace"]), "petition", "{name}");
        assert!(
            d["spec"]["replicas"].as_i64().unwrap() >= 2,
            "{name}: one replica is one outage away from none"
        );
        let pod = &d["spec"]["template"]["spec"];
        assert_eq!(pod["securityContext"]["runAsNonRoot"].as_bool(), Some(true));
        let c = &pod["containers"][0];
        let binary = strings(&c["command"]).join(" ");
        assert!(
            binaries.contains(&binary),
            "{name} runs {binary:?}, not in the image"
        );
        assert!(text(&c["image"]).contains("petition-pipeline"), "{name}");
        for (probe, path) in [
            ("startupProbe", "/livez"),
            ("livenessProbe", "/livez"),
            ("readinessProbe", "/readyz"),
        ] {
            assert_eq!(text(&c[probe]["httpGet"]["path"]), path, "{name} {probe}");
        }
        assert!(
            !text(&c["resources"]["limits"]["memory"]).is_empty(),
            "{name}"
        );
        let grpc = c["ports"][0]["containerPort"].as_i64().unwrap();
        let env: BTreeMap<String, String> = c["env"]
            .as_vec()
            .unwrap()
            .iter()
            .map(|e| (text(&e["name"]), text(&e["value"])))
            .collect();
        assert_eq!(env["PETITION_LISTEN"], format!("0.0.0.0:{grpc}"), "{name}");
        // the pods' reference data is the image's own
        assert_eq!(
            text(&pod["volumes"][0]["configMap"]["name"])
                .rsplit_once('-')
                .unwrap()
                .0,
            "petition-reference"
        );
        let budget = of("PodDisruptionBudget")
            .into_iter()
            .find(|p| text(&p["metadata"]["name"]) == name)
            .unwrap_or_else(|| panic!("{name} has no disruption budget"));
        assert_eq!(budget["spec"]["minAvailable"].as_i64(), Some(1));
        let service = of("Service")
            .into_iter()
            .find(|s| text(&s["metadata"]["name"]) == name)
            .unwrap_or_else(|| panic!("{name} has no Service"));
        assert_eq!(service["spec"]["ports"][0]["port"].as_i64(), Some(grpc));
        deployed.push(name);
    }
    deployed.sort();
    assert_eq!(deployed, ["analytics", "intake", "routing", "supervision"]);
    let reference = of("ConfigMap")
        .into_iter()
        .find(|c| text(&c["metadata"]["name"]).starts_with("petition-reference"))
        .expect("the reference data");
    assert_eq!(
        text(&reference["data"]["orgs.toml"]),
        std::fs::read_to_string(deploy("config/orgs.toml")).unwrap()
    );
}

/// The metric names the code records, read from its `counter!`, `gauge!` and `histogram!`.
fn recorded_metrics() -> BTreeSet<String> {
    fn walk(dir: &Path, out: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let source = std::fs::read_to_string(&path).unwrap();
                for kind in ["counter!(", "gauge!(", "histogram!("] {
                    for part in source.split(kind).skip(1) {
                        let name: String = part
                            .trim_start()
                            .strip_prefix('"')
                            .map(|p| p.chars().take_while(|c| *c != '"').collect())
                            .unwrap_or_default();
                        if !name.is_empty() {
                            out.insert(name);
                        }
                    }
                }
            }
        }
    }
    let mut names = BTreeSet::new();
    for dir in ["crates", "services"] {
        walk(&repo().join(dir), &mut names);
    }
    names
}

/// The metric names a PromQL expression reads: what is left once label matchers, ranges,
/// grouping clauses, strings, numbers and function names are taken out.
fn metrics_in(expr: &str) -> BTreeSet<String> {
    let mut plain = String::new();
    let mut depth = 0;
    for c in expr.chars() {
        match c {
            '{' | '[' => depth += 1,
            '}' | ']' => depth -= 1,
            _ if depth == 0 => plain.push(c),
            _ => {}
        }
    }
    for clause in [" by (", " without ("] {
        while let Some(at) = plain.find(clause) {
            let end = plain[at..].find(')').map_or(plain.len(), |e| at + e + 1);
            plain.replace_range(at..end, " ");
        }
    }
    let functions = [
        "sum",
        "rate",
        "increase",
        "histogram_quantile",
        "absent",
        "and",
        "or",
        "unless",
    ];
    plain
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with(|c: char| c.is_ascii_alphabetic()))
        .filter(|w| !functions.contains(w))
        .map(|w| w.strip_suffix("_bucket").unwrap_or(w).to_owned())
        .collect()
}

#[test]
fn every_metric_the_alerts_and_the_dashboard_read_is_one_the_services_record() {
    let recorded = recorded_metrics();
    assert!(recorded.contains("rpc_requests_total"), "{recorded:?}");
    let mut exprs = Vec::new();
    let rules = std::fs::read_to_string(deploy("prometheus/alerts.yml")).unwrap();
    let rules = &YamlLoader::load_from_str(&rules).unwrap()[0];
    let mut alerts = 0;
    for group in rules["groups"].as_vec().unwrap() {
        for rule in group["rules"].as_vec().unwrap() {
            let name = text(&rule["alert"]);
            let runbook = text(&rule["annotations"]["runbook"]);
            assert_eq!(
                runbook,
                format!("docs/operations.md#{}", name.to_lowercase()),
                "{name}"
            );
            let ops = std::fs::read_to_string(repo().join("docs/operations.md")).unwrap();
            assert!(
                ops.contains(&format!("### {name}")),
                "docs/operations.md has no runbook entry for {name}"
            );
            exprs.push((name, text(&rule["expr"])));
            alerts += 1;
        }
    }
    assert!(alerts >= 10);
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(deploy("grafana/dashboards/petition.json")).unwrap(),
    )
    .unwrap();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            exprs.push((
                panel["title"].as_str().unwrap().to_owned(),
                target["expr"].as_str().unwrap().to_owned(),
            ));
        }
    }
    for (what, expr) in &exprs {
        let read = metrics_in(expr);
        assert!(!read.is_empty(), "{what}: {expr}");
        for m in read {
            assert!(
                m == "up" || recorded.contains(&m),
                "{what} reads {m}, which no service records ({expr})"
            );
        }
    }
}

/// What a container of `service` would get, for a process on this machine: the environment
/// compose gives it, with the compose network's names pointed at this test's servers.
fn process_env(
    service: &Yaml,
    db: &TestDatabase,
    redis: &TestRedis,
    collector: std::net::SocketAddr,
) -> (String, Vec<(String, String)>) {
    let config = repo().join("deploy/config");
    let mut env: BTreeMap<String, String> = service["environment"]
        .as_hash()
        .expect("environment")
        .iter()
        .map(|(k, v)| (text(k), text(v)))
        .collect();
    let otlp = env
        .get("OTEL_EXPORTER_OTLP_ENDPOINT")
        .map(|e| e.replace("otel-collector:4317", &collector.to_string()))
        .unwrap_or_default();
    let mut rewrite = |key: &str, value: String| {
        assert!(env.contains_key(key), "compose gives no {key}");
        env.insert(key.to_owned(), value);
    };
    // Ports of the test's own choosing, on loopback; the test's database, Redis and OTLP
    // receiver, where the compose network names `postgres`, `redis` and `otel-collector`.
    rewrite("PETITION_LISTEN", "127.0.0.1:0".into());
    rewrite("PETITION_ADMIN_LISTEN", "127.0.0.1:0".into());
    rewrite("PETITION_DATABASE_URL", db.url.clone());
    rewrite("PETITION_REDIS_URL", redis.url.clone());
    rewrite("PETITION_CONFIG_DIR", config.display().to_string());
    rewrite("OTEL_EXPORTER_OTLP_ENDPOINT", otlp);
    if let Some(rules) = env.get_mut("PETITION_ROUTING_RULES") {
        *rules = rules.replace("/etc/petition", &config.display().to_string());
    }
    // One Redis serves every test: the keys of this one under a prefix of its own.
    env.insert("PETITION_STREAM_PREFIX".into(), redis.prefix.clone());
    let binary = strings(&service["entrypoint"]).join(" ");
    (binary, env.into_iter().collect())
}

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

/// Where the OpenTelemetry collector would be: every span exported to it, as (the exporting
/// process's service.name, trace id, span name).
#[derive(Default, Clone)]
struct Collector {
    spans: std::sync::Arc<std::sync::Mutex<Vec<ReceivedSpan>>>,
}

/// (service.name, trace id, span name)
type ReceivedSpan = (String, Vec<u8>, String);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.spans.lock().unwrap();
        for rs in request.into_inner().resource_spans {
            let service = rs
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|a| a.key == "service.name")
                .and_then(|a| a.value.as_ref())
                .and_then(|v| match &v.value {
                    Some(AnyValue::StringValue(s)) => Some(s.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            for span in rs.scope_spans.into_iter().flat_map(|s| s.spans) {
                spans.push((service.clone(), span.trace_id, span.name));
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

impl Collector {
    async fn start(&self) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(self.clone()))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener));
        tokio::spawn(server);
        addr
    }

    /// The services that sent spans of trace `id`.
    fn services_in(&self, id: &[u8]) -> BTreeSet<String> {
        self.spans
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, t, _)| t == id)
            .map(|(s, _, _)| s.clone())
            .collect()
    }
}

// Several workers: the receiver must answer the exporters while the test waits, blocking, for
// the processes to exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_compose_services_run_as_processes_with_the_environment_compose_gives_them() {
    let db = require!(TestDatabase::create());
    let redis = require!(TestRedis::create());
    let token_key = "a-token-key-for-the-compose-test-0123456789";
    let Some(compose) = resolved_compose(
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        token_key,
        &["docker-compose.yml"],
    ) else {
        return;
    };
    let collector = Collector::default();
    let collector_addr = collector.start().await;
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_petition-suite"))
        .parent()
        .unwrap()
        .to_owned();
    let mut running = BTreeMap::new();
    for (name, service) in services(&compose) {
        // the suite is the other way to run it (profile "suite"), not beside these
        if service["build"].is_badvalue() || !service["profiles"].is_badvalue() {
            continue;
        }
        let (binary, env) = process_env(service, &db, &redis, collector_addr);
        assert_eq!(
            env.iter()
                .find(|(k, _)| k == "PETITION_LOG_FORMAT")
                .map(|(_, v)| v.as_str()),
            Some("json")
        );
        let p = ServiceProcess::spawn_with_only(&bin_dir.join(&binary).display().to_string(), &env);
        // The container's health check, on the port the process bound; retried as compose
        // retries it while the service starts (its consumers join their groups).
        let check = || {
            Command::new(bin_dir.join("petition"))
                .args([
                    "health",
                    "--addr",
                    &p.grpc_addr.to_string(),
                    "--timeout",
                    "5",
                ])
                .output()
                .unwrap()
        };
        let mut health = check();
        for _ in 0..100 {
            if health.status.success() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
            health = check();
        }
        assert!(
            health.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&health.stderr)
        );
        running.insert(name, p);
    }
    assert_eq!(
        running.keys().collect::<Vec<_>>(),
        ["analytics", "intake", "routing", "supervision"]
    );

    // They talk: a petition registered at intake is routed, gets its clocks and is counted.
    let audience = text(&compose["services"]["intake"]["environment"]["PETITION_TOKEN_AUDIENCE"]);
    let keys = TokenKeys::parse(token_key)
        .unwrap()
        .with_audience(Some(audience));
    let sample = samples().into_iter().find(|s| s.sample == 1).unwrap();
    let mut req = sample.request();
    let received_at = now() - chrono::Duration::hours(1);
    req.received_at = Some(petition_e2e::timestamp(received_at));
    let channel = |name: &str| petition_e2e::connect(running[name].grpc_addr);
    // The caller starts the trace, as a city platform calling in would.
    let trace_id: [u8; 16] = *uuid::Uuid::new_v4().as_bytes();
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let mut call = tonic::Request::new(req);
    call.metadata_mut().insert(
        "traceparent",
        format!("00-{}-{}-01", hex(&trace_id), hex(&trace_id[..8]))
            .parse()
            .unwrap(),
    );
    let r = petition_e2e::client(channel("intake").await, &keys, &sample.principal())
        .register_petition(call)
        .await
        .unwrap()
        .into_inner();
    let admin = Principal {
        subject: "ops".into(),
        org: "shanxi.bureau".into(),
        role: Role::Admin,
        scopes: vec![],
    };
    let bearer = || petition_e2e::bearer(&keys, &admin);
    let mut routing = pb::routing_service_client::RoutingServiceClient::with_interceptor(
        channel("routing").await,
        bearer(),
    );
    let mut supervision =
        pb::supervision_service_client::SupervisionServiceClient::with_interceptor(
            channel("supervision").await,
            bearer(),
        );
    let mut analytics = pb::analytics_service_client::AnalyticsServiceClient::with_interceptor(
        channel("analytics").await,
        bearer(),
    );
    // the year of the petition date, in Beijing
    let period = chrono::FixedOffset::east_opt(8 * 3600)
        .unwrap()
        .from_utc_datetime(&received_at.naive_utc())
        .format("%Y")
        .to_string();
    let mut seen = (false, false, false);
    for _ in 0..400 {
        if !seen.0 {
            seen.0 = routing
                .get_assignment(pb::GetAssignmentRequest {
                    case_id: r.case_id.clone(),
                })
                .await
                .is_ok_and(|a| a.get_ref().organ == "pingcheng.housing");
        }
        if !seen.1 {
            seen.1 = supervision
                .get_timeline(pb::GetTimelineRequest {
                    case_id: r.case_id.clone(),
                })
                .await
                .is_ok_and(|t| !t.get_ref().clocks.is_empty());
        }
        if !seen.2 {
            seen.2 = analytics
                .get_situation(pb::SituationRequest {
                    period: period.clone(),
                    organ: String::new(),
                })
                .await
                .is_ok_and(|s| s.get_ref().cases.as_ref().is_some_and(|f| f.count >= 1));
        }
        if seen == (true, true, true) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(seen, (true, true, true), "routed, clocked, counted");
    let intake_addr = running["intake"].grpc_addr;
    // A clean stop flushes each process's spans to the collector.
    for (_, mut p) in running {
        p.terminate();
        p.expect_clean_exit();
    }
    let traced = collector.services_in(&trace_id);
    assert_eq!(
        traced,
        [
            "petition-analytics",
            "petition-intake",
            "petition-routing",
            "petition-supervision"
        ]
        .map(String::from)
        .into(),
        "one petition's trace, from the intake call through the streams; spans seen: {:?}",
        collector.spans.lock().unwrap().len()
    );
    // and the health check says so once a service is gone
    let health = Command::new(bin_dir.join("petition"))
        .args([
            "health",
            "--addr",
            &intake_addr.to_string(),
            "--timeout",
            "2",
        ])
        .output()
        .unwrap();
    assert_eq!(health.status.code(), Some(6), "{health:?}");
}
