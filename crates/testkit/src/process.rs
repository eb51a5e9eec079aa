//! A service binary run as a process, as an operator runs it: its JSON log is read for the
//! addresses it bound, and it can be sent SIGTERM.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub struct ServiceProcess {
    child: Child,
    pub grpc_addr: SocketAddr,
    pub admin_addr: Option<SocketAddr>,
    /// every log line so far (stdout and stderr)
    lines: mpsc::Receiver<String>,
    pub log: Vec<String>,
}

impl ServiceProcess {
    /// Runs `binary` as a development run on free ports, logging JSON, with `args` added.
    pub fn spawn_dev(binary: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut all = vec![
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--dev",
        ];
        all.extend_from_slice(args);
        Self::spawn(binary, &all, env)
    }

    /// A development run of `binary` on the test's PostgreSQL database, and on its Redis key
    /// space when given (else on the in-process bus).
    pub fn spawn_on(
        binary: &str,
        db: &crate::TestDatabase,
        redis: Option<&crate::TestRedis>,
    ) -> Self {
        let mut args = vec!["--database-url", db.url.as_str()];
        if let Some(r) = redis {
            args.extend([
                "--redis-url",
                r.url.as_str(),
                "--stream-prefix",
                r.prefix.as_str(),
            ]);
        }
        Self::spawn_dev(binary, &args, &[])
    }

    /// SIGTERM while `call` is in flight: `select` (`SELECT … FOR UPDATE` on the rows `call`
    /// needs) holds it inside the service until the service has begun to shut down; then the
    /// rows are let go and the call's answer returned.
    pub async fn terminate_during<T: Send + 'static>(
        &mut self,
        db: &crate::TestDatabase,
        select: &str,
        call: impl std::future::Future<Output = T> + Send + 'static,
    ) -> T {
        let lock = crate::Lock::hold(&db.url, select).await;
        let call = tokio::spawn(call);
        crate::wait_for_lock_wait(&db.url).await;
        self.terminate();
        lock.release().await;
        call.await.expect("the call's task")
    }

    /// Runs `binary` with `args` (add `--log-format json`, `--listen 127.0.0.1:0`) and waits for
    /// its "serving" line.
    pub fn spawn(binary: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(binary);
        cmd.args(args)
            .envs(env.iter().copied())
            .env_remove("PETITION_DATABASE_URL")
            .env_remove("PETITION_REDIS_URL");
        Self::start(cmd, binary)
    }

    /// Runs `binary` with no arguments and `env` as its whole environment, as a container
    /// runs it (set `PETITION_LOG_FORMAT=json` and listen on port 0), and waits for its
    /// "serving" line.
    pub fn spawn_with_only(binary: &str, env: &[(String, String)]) -> Self {
        let mut cmd = Command::new(binary);
        cmd.env_clear()
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        Self::start(cmd, binary)
    }

    fn start(mut cmd: Command, binary: &str) -> Self {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {binary}: {e}"));
        let (tx, lines) = mpsc::channel();
        for out in [
            Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().expect("stderr")),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        return;
                    }
                }
            });
        }
        let mut p = Self {
            child,
            grpc_addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            admin_addr: None,
            lines,
            log: Vec::new(),
        };
        let serving = p
            .wait_for_line(
                |l| l.contains("\"message\":\"serving\""),
                Duration::from_secs(30),
            )
            .unwrap_or_else(|| panic!("{binary} never said it was serving:\n{}", p.log.join("\n")));
        let v: serde_json::Value = serde_json::from_str(&serving).expect("json log line");
        let field = |name: &str| {
            v["fields"][name].as_str().map(|s| {
                s.trim_start_matches("Some(")
                    .trim_end_matches(')')
                    .to_owned()
            })
        };
        p.grpc_addr = field("grpc_addr")
            .and_then(|a| a.parse().ok())
            .expect("grpc_addr in the serving line");
        p.admin_addr = field("admin_addr").and_then(|a| a.parse().ok());
        p
    }

    /// Reads log lines until one satisfies `pred`, or `timeout` passes.
    pub fn wait_for_line(
        &mut self,
        pred: impl Fn(&str) -> bool,
        timeout: Duration,
    ) -> Option<String> {
        let deadline = Instant::now() + timeout;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.log.push(line.clone());
                    if pred(&line) {
                        return Some(line);
                    }
                }
                Err(_) => return None,
            }
        }
        None
    }

    /// Takes every line logged so far into `log`, without waiting.
    pub fn drain(&mut self) {
        while let Ok(line) = self.lines.try_recv() {
            self.log.push(line);
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM, as `docker stop` and systemd do.
    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// SIGKILL, as the kernel's OOM killer or a lost machine does: no chance to answer, flush
    /// or say goodbye. Waits until it is gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.drain();
    }

    /// Sends SIGTERM and waits until the process says it is shutting down.
    pub fn terminate(&mut self) {
        self.sigterm();
        self.wait_for_line(|l| l.contains("shutting down"), Duration::from_secs(5))
            .unwrap_or_else(|| panic!("no shutdown after SIGTERM:\n{}", self.log.join("\n")));
    }

    /// Waits for the process to exit, and fails unless it exits 0 within 10 s.
    pub fn expect_clean_exit(&mut self) {
        let status = self
            .wait_exit(Duration::from_secs(10))
            .unwrap_or_else(|| panic!("no exit within 10 s:\n{}", self.log.join("\n")));
        assert!(
            status.success(),
            "exit {status:?}:\n{}",
            self.log.join("\n")
        );
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.drain();
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Asserts that a command failed and that its standard error says each of `says` (the field
/// or flag and the rule, as a person at the terminal needs them); returns that text.
pub fn refused(out: &std::process::Output, says: &[&str]) -> String {
    assert!(
        !out.status.success(),
        "expected a failure, got {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    for s in says {
        assert!(err.contains(s), "stderr does not say {s:?}: {err}");
    }
    err
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
