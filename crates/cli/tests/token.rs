//! `petition token issue`: a token the services accept, signed with the development key only
//! when asked for, with the configured key otherwise, and never for an organ or role the
//! services do not know.

use petition_auth::{Role, TokenKeys};
use petition_testkit::process::refused;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_petition");

fn issue(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(["token", "issue"])
        .args(args)
        .env_remove("PETITION_TOKEN_KEY")
        .env_remove("PETITION_CONFIG_DIR")
        .output()
        .unwrap()
}

#[test]
fn the_development_key_signs_only_when_asked_for() {
    // Without a key no token: one the services would refuse is no help.
    let no_key = issue(&["--org", "pingcheng.bureau", "--role", "clerk"]);
    refused(&no_key, &["PETITION_TOKEN_KEY", "--dev"]);
    assert_eq!(no_key.status.code(), Some(2), "a command-line matter");
    assert!(no_key.stdout.is_empty());
    let out = issue(&["--dev", "--org", "pingcheng.bureau", "--role", "clerk"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("public development key"));
    let p = TokenKeys::dev()
        .verify(String::from_utf8(out.stdout).unwrap().trim())
        .unwrap();
    assert_eq!(
        (p.org.as_str(), p.role, p.subject.as_str()),
        ("pingcheng.bureau", Role::Clerk, "clerk@pingcheng.bureau")
    );
}

#[test]
fn the_configured_key_signs_an_upstream_systems_token() {
    let key = "a-configured-token-key-of-at-least-32-bytes";
    let out = Command::new(BIN)
        .args([
            "token",
            "issue",
            "--org",
            "datong.bureau",
            "--role",
            "upstream",
        ])
        .args(["--subject", "datong.12345"])
        .env("PETITION_TOKEN_KEY", key)
        .output()
        .unwrap();
    assert!(out.status.success());
    let token = String::from_utf8(out.stdout).unwrap();
    assert!(TokenKeys::dev().verify(token.trim()).is_err());
    let p = TokenKeys::hs256(key.as_bytes())
        .unwrap()
        .verify(token.trim())
        .unwrap();
    assert_eq!(
        (p.subject.as_str(), p.role),
        ("datong.12345", Role::Upstream)
    );
}

#[test]
fn an_organ_outside_the_tree_a_long_life_or_an_unknown_role_is_refused() {
    let out = issue(&["--dev", "--org", "nonexistent.org", "--role", "clerk"]);
    refused(&out, &["--org", "not in the organisation tree"]);
    assert!(out.stdout.is_empty());
    let out = issue(&[
        "--dev",
        "--org",
        "pingcheng.bureau",
        "--role",
        "clerk",
        "--ttl-hours",
        "500",
    ]);
    refused(&out, &["--ttl-hours", "168"]);
    let out = issue(&["--org", "x", "--role", "mayor"]);
    refused(&out, &["unknown role"]);
    assert_eq!(out.status.code(), Some(2), "a command-line mistake");
}
