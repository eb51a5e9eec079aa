//! City and district deployments plug into one case pipeline (DESIGN §5b). Each deployment
//! serves the organs of its own regions; an organ of a region a peer deployment serves is
//! remote, and a case routed to it travels there as a registration at the peer's intake. This
//! crate holds the pure part: the peers file, which deployment serves an organ, and what an
//! exchange does with each answer a peer gives.

use petition_domain::{OrgTree, Organ, RegionCode};
use std::path::{Path, PathBuf};
use std::time::Duration;

petition_domain::text_enum! {
    /// Where a case sent to a peer stands.
    pub enum ExchangeStatus {
        /// written with the routing, not sent yet
        Pending = "pending",
        /// the peer could not be reached or answered for now; sent again with backoff
        Retrying = "retrying",
        /// registered at the peer: its case number is kept
        Done = "done",
        /// the peer holds another petition under our case number: a person decides
        Conflict = "conflict",
        /// the peer refused it for good, with its reason: a person decides
        Failed = "failed",
    }
}

impl ExchangeStatus {
    /// Whether the delivery loop still sends it by itself.
    pub fn is_open(self) -> bool {
        matches!(self, ExchangeStatus::Pending | ExchangeStatus::Retrying)
    }
}

/// What one delivery attempt's answer means for the exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The peer was away, overloaded or failed inside: send again later.
    Retry,
    /// Same key, other content.
    Conflict,
    /// A refusal that will not change by sending the same again.
    Refused,
}

/// How a gRPC status code from the peer's intake is taken. A refusal must be certain: an
/// unknown or internal failure is retried, since giving up loses the case for the petitioner.
pub fn verdict(code: tonic::Code) -> Verdict {
    use tonic::Code::*;
    match code {
        AlreadyExists => Verdict::Conflict,
        InvalidArgument | FailedPrecondition | PermissionDenied | NotFound | OutOfRange
        | Unimplemented => Verdict::Refused,
        // An expired or rotated token is fixed in the peers file, and every waiting case then
        // goes by itself: retried (and alerted on), not failed one by one.
        Ok | Unauthenticated | Cancelled | Unknown | DeadlineExceeded | ResourceExhausted
        | Aborted | Internal | Unavailable | DataLoss => Verdict::Retry,
    }
}

/// The wait before attempt `attempts + 1`: doubling from `base`, at most `cap`, so that a peer
/// away for hours is asked every few minutes and one away for a second is asked again at once.
pub fn backoff(attempts: u32, base: Duration, cap: Duration) -> Duration {
    let factor = 1u32.checked_shl(attempts.min(20)).unwrap_or(u32::MAX);
    base.saturating_mul(factor).min(cap)
}

#[derive(Debug, thiserror::Error)]
pub enum FederationError {
    #[error("peers file {path}: {error}")]
    Read { path: String, error: String },
    #[error("peers file: {0}")]
    Invalid(String),
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PeersFile {
    name: String,
    #[serde(default)]
    regions: Vec<String>,
    #[serde(default)]
    upstreams: Vec<String>,
    #[serde(default)]
    peer: Vec<PeerRow>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PeerRow {
    name: String,
    address: String,
    regions: Vec<String>,
    token: Option<String>,
    token_file: Option<PathBuf>,
    ca_file: Option<PathBuf>,
    domain: Option<String>,
    #[serde(default)]
    insecure: bool,
}

/// A peer deployment: where its intake listens, the regions it serves, and the bearer token
/// it issued us (role upstream, subject = our name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub name: String,
    pub address: String,
    pub regions: Vec<RegionCode>,
    pub token: String,
    /// the CA that signed the peer's certificate, for an https address
    pub ca_file: Option<PathBuf>,
    /// the name in the peer's certificate, when it differs from the address's host
    pub domain: Option<String>,
}

/// This deployment's place among its peers. Without a peers file a deployment serves every
/// organ of its tree and has no peers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Federation {
    /// our name: the source_system we register under at peers
    pub name: String,
    /// the regions we serve; empty: every region no peer serves
    pub regions: Vec<RegionCode>,
    pub peers: Vec<Peer>,
    /// the deployments (their source_system names) that may send cases down to us and watch
    /// their steps; other upstream systems, a 12345 hotline say, register as platforms do
    pub upstreams: Vec<String>,
}

fn regions(field: &str, codes: &[String]) -> Result<Vec<RegionCode>, FederationError> {
    codes
        .iter()
        .map(|c| {
            RegionCode::parse(c.trim())
                .map_err(|e| FederationError::Invalid(format!("{field}: {e}")))
        })
        .collect()
}

/// How closely `regions` holds `organ`: the length of the longest significant prefix that
/// contains the organ's region, or `None`.
fn closeness(regions: &[RegionCode], organ: &Organ) -> Option<usize> {
    regions
        .iter()
        .filter(|r| r.contains(&organ.region))
        .map(|r| r.prefix().len())
        .max()
}

/// Whether an http:// address names this machine.
fn loopback(address: &str) -> bool {
    let host = address
        .trim_start_matches("http://")
        .split(['/', '?'])
        .next()
        .unwrap_or_default();
    let host = host
        .rsplit_once(':')
        .map_or(host, |(h, _)| h)
        .trim_matches(['[', ']']);
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl Federation {
    /// Reads a peers file; a relative `token_file` or `ca_file` is taken from the file's folder.
    pub fn load(path: &Path) -> Result<Self, FederationError> {
        let read = |p: &Path| {
            std::fs::read_to_string(p).map_err(|e| FederationError::Read {
                path: p.display().to_string(),
                error: e.to_string(),
            })
        };
        let text = read(path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, |file| read(&base.join(file)))
    }

    /// Parses a peers file; `read` opens the token files it names.
    pub fn parse(
        text: &str,
        read: impl Fn(&Path) -> Result<String, FederationError>,
    ) -> Result<Self, FederationError> {
        let file: PeersFile =
            toml::from_str(text).map_err(|e| FederationError::Invalid(e.to_string()))?;
        let name = file.name.trim().to_owned();
        if name.is_empty() {
            return Err(FederationError::Invalid(
                "name: required, the source_system this deployment registers under at its peers"
                    .into(),
            ));
        }
        let mut peers = Vec::new();
        for row in file.peer {
            let field = format!("peer {:?}", row.name);
            let token = match (row.token, row.token_file) {
                (Some(t), None) => t,
                (None, Some(f)) => read(&f)?,
                _ => {
                    return Err(FederationError::Invalid(format!(
                        "{field}: exactly one of token and token_file (the bearer token the peer issued us)"
                    )));
                }
            };
            if row.name.trim().is_empty() || peers.iter().any(|p: &Peer| p.name == row.name) {
                return Err(FederationError::Invalid(format!(
                    "{field}: each peer needs a name of its own"
                )));
            }
            if !(row.address.starts_with("http://") || row.address.starts_with("https://")) {
                return Err(FederationError::Invalid(format!(
                    "{field}: address must start with http:// or https://, got {:?}",
                    row.address
                )));
            }
            // Petitioners' identity and contact data travel to the peer: in the clear only to
            // this machine, or where someone wrote down that the network is trusted.
            if row.address.starts_with("http://") && !loopback(&row.address) && !row.insecure {
                return Err(FederationError::Invalid(format!(
                    "{field}: {} would carry personal data unencrypted; use https:// (with ca_file), or insecure = true on a trusted network",
                    row.address
                )));
            }
            let served = regions(&format!("{field}.regions"), &row.regions)?;
            if served.is_empty() {
                return Err(FederationError::Invalid(format!(
                    "{field}: regions: name the regions the peer serves"
                )));
            }
            peers.push(Peer {
                name: row.name,
                address: row.address,
                regions: served,
                token: token.trim().to_owned(),
                ca_file: row.ca_file,
                domain: row.domain,
            });
        }
        Ok(Federation {
            name,
            regions: regions("regions", &file.regions)?,
            peers,
            upstreams: file
                .upstreams
                .into_iter()
                .map(|u| u.trim().to_owned())
                .collect(),
        })
    }

    pub fn peer(&self, name: &str) -> Option<&Peer> {
        self.peers.iter().find(|p| p.name == name)
    }

    /// The peer that serves `organ`: the one whose regions hold it most closely, unless ours
    /// hold it as closely. A city serving 140200 and a district peer serving 140213: the
    /// district's organs are the peer's, the city's own are ours.
    pub fn peer_for(&self, organ: &Organ) -> Option<&Peer> {
        let ours = closeness(&self.regions, organ);
        self.peers
            .iter()
            .filter_map(|p| closeness(&p.regions, organ).map(|c| (c, p)))
            .filter(|(c, _)| ours.is_none_or(|o| *c > o))
            .max_by_key(|(c, _)| *c)
            .map(|(_, p)| p)
    }

    /// The peer serving the organ `id` of `tree`, if it is remote.
    pub fn remote<'a>(&'a self, tree: &OrgTree, id: &str) -> Option<&'a Peer> {
        tree.get(id).and_then(|o| self.peer_for(o))
    }

    /// Whether this deployment serves `organ`: no peer serves it, and, when our regions are
    /// named, one of them holds it.
    pub fn serves(&self, organ: &Organ) -> bool {
        self.peer_for(organ).is_none()
            && (self.regions.is_empty() || closeness(&self.regions, organ).is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> OrgTree {
        OrgTree::from_toml(include_str!("../../../deploy/config/orgs.toml")).unwrap()
    }

    fn city() -> Federation {
        Federation::parse(
            r#"
name = "datong"
regions = ["140200"]
[[peer]]
name = "pingcheng"
address = "http://127.0.0.1:50071"
regions = ["140213"]
token = "t"
"#,
            |_| unreachable!(),
        )
        .unwrap()
    }

    #[test]
    fn a_district_organ_is_the_district_peers_and_a_city_organ_ours() {
        let (t, f) = (tree(), city());
        for id in [
            "pingcheng.housing",
            "pingcheng.bureau",
            "pingcheng.street.beiguan",
            "pingcheng.discipline",
        ] {
            assert_eq!(
                f.remote(&t, id).map(|p| p.name.as_str()),
                Some("pingcheng"),
                "{id}"
            );
            assert!(!f.serves(t.get(id).unwrap()), "{id}");
        }
        for id in ["datong.bureau", "datong.housing", "datong.discipline"] {
            assert!(f.remote(&t, id).is_none(), "{id}");
            assert!(f.serves(t.get(id).unwrap()), "{id}");
        }
        // Yungang has no peer here and lies in the city's region: served by the city.
        assert!(f.remote(&t, "yungang.housing").is_none());
        // The province lies outside every region named: nobody here serves it.
        assert!(!f.serves(t.get("shanxi.bureau").unwrap()));
    }

    #[test]
    fn a_district_serves_only_its_own_region() {
        let (t, f) = (
            tree(),
            Federation::parse(
                "name = \"pingcheng\"\nregions = [\"140213\"]",
                |_| unreachable!(),
            )
            .unwrap(),
        );
        assert!(f.serves(t.get("pingcheng.housing").unwrap()));
        assert!(f.serves(t.get("pingcheng.street.nanguan").unwrap()));
        assert!(!f.serves(t.get("yungang.housing").unwrap()));
        assert!(!f.serves(t.get("datong.housing").unwrap()));
    }

    #[test]
    fn without_a_peers_file_everything_is_served_here() {
        let t = tree();
        let f = Federation::default();
        assert!(t.organs().all(|o| f.serves(o) && f.peer_for(o).is_none()));
    }

    #[test]
    fn a_peers_file_names_what_is_wrong() {
        let bad = |text: &str, says: &str| {
            let e = Federation::parse(text, |_| Ok("tok".into())).unwrap_err();
            assert!(e.to_string().contains(says), "{e} should say {says}");
        };
        bad("regions = []", "name");
        bad("name = \" \"", "name: required");
        bad(
            "name = \"a\"\n[[peer]]\nname = \"b\"\naddress = \"127.0.0.1:1\"\nregions = [\"140213\"]\ntoken = \"t\"",
            "http://",
        );
        bad(
            "name = \"a\"\n[[peer]]\nname = \"b\"\naddress = \"http://127.0.0.1:1\"\nregions = [\"14021\"]\ntoken = \"t\"",
            "regions",
        );
        bad(
            "name = \"a\"\n[[peer]]\nname = \"b\"\naddress = \"http://10.0.0.7:50051\"\nregions = [\"140213\"]\ntoken = \"t\"",
            "unencrypted",
        );
        for ok in [
            "http://localhost:1",
            "http://[::1]:1",
            "https://pingcheng.example",
        ] {
            let text = format!(
                "name = \"a\"\n[[peer]]\nname = \"b\"\naddress = \"{ok}\"\nregions = [\"140213\"]\ntoken = \"t\""
            );
            assert!(Federation::parse(&text, |_| unreachable!()).is_ok(), "{ok}");
        }
        let trusted = "name = \"a\"\n[[peer]]\nname = \"b\"\naddress = \"http://10.0.0.7:1\"\nregions = [\"140213\"]\ntoken = \"t\"\ninsecure = true";
        assert!(Federation::parse(trusted, |_| unreachable!()).is_ok());
        bad(
            "name = \"a\"\n[[peer]]\nname = \"b\"\naddress = \"http://127.0.0.1:1\"\nregions = [\"140213\"]",
            "exactly one of token and token_file",
        );
        let f = Federation::parse(
            "name = \"a\"\n[[peer]]\nname = \"b\"\naddress = \"http://127.0.0.1:1\"\nregions = [\"140213\"]\ntoken_file = \"b.token\"",
            |p| {
                assert_eq!(p, Path::new("b.token"));
                Ok("secret\n".into())
            },
        )
        .unwrap();
        assert_eq!(f.peers[0].token, "secret");
    }

    #[test]
    fn backoff_doubles_to_its_cap() {
        let (b, cap) = (Duration::from_millis(500), Duration::from_secs(300));
        assert_eq!(backoff(0, b, cap), Duration::from_millis(500));
        assert_eq!(backoff(1, b, cap), Duration::from_secs(1));
        assert_eq!(backoff(3, b, cap), Duration::from_secs(4));
        assert_eq!(backoff(12, b, cap), cap);
        assert_eq!(backoff(u32::MAX, b, cap), cap);
    }

    #[test]
    fn only_a_certain_refusal_stops_the_exchange() {
        assert_eq!(verdict(tonic::Code::AlreadyExists), Verdict::Conflict);
        assert_eq!(verdict(tonic::Code::InvalidArgument), Verdict::Refused);
        assert_eq!(verdict(tonic::Code::FailedPrecondition), Verdict::Refused);
        assert_eq!(verdict(tonic::Code::PermissionDenied), Verdict::Refused);
        for c in [
            tonic::Code::Unauthenticated,
            tonic::Code::Unavailable,
            tonic::Code::Internal,
            tonic::Code::Unknown,
            tonic::Code::DeadlineExceeded,
            tonic::Code::ResourceExhausted,
        ] {
            assert_eq!(verdict(c), Verdict::Retry, "{c:?}");
        }
    }
}
