//! The demo: a year of petitions pushed through the running suite's real gRPC APIs on its
//! simulated clock, so that every screen has something to show — inboxes, due lists and
//! notices, extensions, ratings, reviews, final cases, the backlog and a year of analytics.
//!
//! It plays every person: the clerk at the district bureau's window registers the day's
//! petitions (the sample petitions' matters, with generated petitioners; some come back on the
//! same matter); each department's handler claims what was sent to it and replies, mostly in
//! time, sometimes late (and is urged), sometimes after an extension the bureau approves;
//! petitioners rate the reply with their query codes and a few ask for review, which the
//! organ one level up decides. Then the clock moves to the next morning.

use chrono::{DateTime, Datelike, Duration, Utc, Weekday};
use petition_auth::{Principal, Role, TokenKeys};
use petition_domain::{OrgKind, OrgTree, SimulatedClock};
use petition_proto::v1 as pb;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// The sample petitions: the matters the demo's petitioners bring.
const SAMPLES: &str = include_str!("../../../tests/e2e/sample-petitions.jsonl");

/// How much to play.
#[derive(Debug, Clone, Copy)]
pub struct Demo {
    /// days of history, ending today
    pub days: u32,
    /// petitions registered on a working day (a third of that at weekends, online)
    pub per_day: u32,
    pub seed: u64,
}

impl Default for Demo {
    fn default() -> Self {
        Demo {
            days: 365,
            per_day: 12,
            seed: 2026,
        }
    }
}

/// What the demo did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub registered: u64,
    pub repeats: u64,
    pub accepted: u64,
    pub accepted_late: u64,
    pub answered: u64,
    pub answered_late: u64,
    pub extended: u64,
    pub rated: u64,
    pub reviews: u64,
    /// calls a service refused (a window that had closed, a case moved on): counted, not fatal
    pub refused: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("the suite at {0} cannot be reached: {1}")]
    Connect(SocketAddr, tonic::transport::Error),
    #[error("{0}: {1}")]
    Call(&'static str, tonic::Status),
    #[error("the sample petitions do not parse: {0}")]
    Samples(String),
    #[error("the clock: {0}")]
    Clock(String),
}

type Authed = InterceptedService<Channel, Bearer>;

#[derive(Clone)]
struct Bearer(tonic::metadata::MetadataValue<tonic::metadata::Ascii>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut r: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        r.metadata_mut().insert("authorization", self.0.clone());
        Ok(r)
    }
}

/// One case as the demo follows it.
struct Followed {
    case_number: String,
    query_code: String,
    /// the day it was accepted, and the day its handler will reply
    accepted: Option<u32>,
    reply_on: u32,
    extend_on: Option<u32>,
    answered: Option<u32>,
    rated: bool,
    /// the day the petitioner asks for review, then the day the reviewing organ decides
    review_on: Option<u32>,
    /// the organ one level up that reviews it, once asked
    reviewer: Option<String>,
    /// the bureau whose window registered it
    window: String,
    /// the day the bureau decides the extension asked for
    decide_extension_on: Option<u32>,
}

struct Driver<'a> {
    channel: Channel,
    keys: &'a TokenKeys,
    rng: StdRng,
    tokens: HashMap<(String, Role), Bearer>,
    cases: BTreeMap<String, Followed>,
    /// earlier petitioners, who may come back on the same matter: (name, id, sample)
    earlier: Vec<(String, String, usize)>,
    samples: Vec<pb::RegisterPetitionRequest>,
    sum: Summary,
}

fn beijing_day(t: DateTime<Utc>) -> chrono::NaiveDate {
    (t + Duration::hours(8)).date_naive()
}

const SURNAMES: [&str; 12] = [
    "王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙",
];
const GIVEN: [&str; 12] = [
    "建国", "秀英", "志强", "桂兰", "海燕", "永明", "丽华", "国庆", "淑珍", "文斌", "晓东", "玉梅",
];

impl<'a> Driver<'a> {
    fn bearer(&mut self, org: &str, role: Role) -> Bearer {
        let keys = self.keys;
        self.tokens
            .entry((org.to_owned(), role))
            .or_insert_with(|| {
                let token = keys.issue(
                    &Principal {
                        subject: format!("{role}@{org}"),
                        org: org.to_owned(),
                        role,
                        scopes: vec![],
                    },
                    Duration::hours(12),
                );
                Bearer(
                    format!("Bearer {token}")
                        .parse()
                        .expect("a token is printable ASCII"),
                )
            })
            .clone()
    }

    fn intake(
        &mut self,
        org: &str,
        role: Role,
    ) -> pb::intake_service_client::IntakeServiceClient<Authed> {
        let b = self.bearer(org, role);
        pb::intake_service_client::IntakeServiceClient::with_interceptor(self.channel.clone(), b)
    }

    fn routing(
        &mut self,
        org: &str,
        role: Role,
    ) -> pb::routing_service_client::RoutingServiceClient<Authed> {
        let b = self.bearer(org, role);
        pb::routing_service_client::RoutingServiceClient::with_interceptor(self.channel.clone(), b)
    }

    fn supervision(
        &mut self,
        org: &str,
        role: Role,
    ) -> pb::supervision_service_client::SupervisionServiceClient<Authed> {
        let b = self.bearer(org, role);
        pb::supervision_service_client::SupervisionServiceClient::with_interceptor(
            self.channel.clone(),
            b,
        )
    }

    /// A refusal is part of life (a window closed, a case moved on); anything else stops.
    fn refused(&mut self, what: &'static str, s: tonic::Status) -> Result<(), DemoError> {
        use tonic::Code;
        match s.code() {
            Code::InvalidArgument
            | Code::FailedPrecondition
            | Code::NotFound
            | Code::PermissionDenied
            | Code::AlreadyExists
            | Code::Aborted => {
                tracing::debug!(what, error = %s.message(), "demo: refused");
                self.sum.refused += 1;
                Ok(())
            }
            _ => Err(DemoError::Call(what, s)),
        }
    }

    fn resident_id(&mut self) -> String {
        let year = self.rng.random_range(1950..2004);
        let month = self.rng.random_range(1..=12);
        let day = self.rng.random_range(1..=28);
        let seq = self.rng.random_range(100..999);
        let first17 = format!("140213{year:04}{month:02}{day:02}{seq:03}");
        let check = petition_domain::identity::check_digit(first17.as_bytes());
        format!("{first17}{check}")
    }

    async fn register(&mut self, now: DateTime<Utc>, weekend: bool) -> Result<(), DemoError> {
        let (name, id, sample) = if !self.earlier.is_empty() && self.rng.random_bool(0.08) {
            let i = self.rng.random_range(0..self.earlier.len());
            self.sum.repeats += 1;
            self.earlier[i].clone()
        } else {
            let name = format!(
                "{}{}",
                SURNAMES[self.rng.random_range(0..SURNAMES.len())],
                GIVEN[self.rng.random_range(0..GIVEN.len())]
            );
            let sample = self.rng.random_range(0..self.samples.len());
            (name, self.resident_id(), sample)
        };
        let mut r = self.samples[sample].clone();
        if weekend {
            r.channel = pb::Channel::Online as i32;
        }
        let visit = r.channel == pb::Channel::Visit as i32;
        r.received_at = Some(ts(now - Duration::minutes(self.rng.random_range(5..90))));
        r.petitioners = vec![pb::PetitionerInput {
            name: name.clone(),
            id_type: pb::IdType::ResidentId as i32,
            id_number: id.clone(),
            phone: format!("139{:08}", self.rng.random_range(0..100_000_000u32)),
            address: "大同市平城区".into(),
            is_main: true,
        }];
        if !visit {
            r.people_present = 0;
        }
        // a few visitors go straight to the province (越级访, Art. 20)
        let window = if visit && self.rng.random_bool(0.06) {
            "shanxi.bureau"
        } else {
            "pingcheng.bureau"
        };
        r.received_by = window.to_owned();
        let mut clerk = self.intake(window, Role::Clerk);
        match clerk.register_petition(r).await {
            Ok(reg) => {
                let reg = reg.into_inner();
                self.sum.registered += 1;
                self.earlier.push((name, id, sample));
                let late = self.rng.random_bool(0.08);
                let extend = !late && self.rng.random_bool(0.04);
                let reply_after = if late {
                    self.rng.random_range(64..80)
                } else if extend {
                    self.rng.random_range(70..85)
                } else {
                    self.rng.random_range(4..45)
                };
                self.cases.insert(
                    reg.case_id,
                    Followed {
                        case_number: reg.case_number,
                        query_code: reg.query_code,
                        accepted: None,
                        reply_on: reply_after,
                        extend_on: extend.then_some(50),
                        answered: None,
                        rated: false,
                        review_on: None,
                        reviewer: None,
                        window: window.to_owned(),
                        decide_extension_on: None,
                    },
                );
                Ok(())
            }
            Err(s) => self.refused("RegisterPetition", s),
        }
    }

    /// Every organ's handler claims what is waiting, then replies to what is due today.
    async fn work(
        &mut self,
        organs: &[String],
        day: u32,
        now: DateTime<Utc>,
    ) -> Result<(), DemoError> {
        for organ in organs {
            let mut routing = self.routing(organ, Role::Handler);
            let inbox = routing
                .list_inbox(pb::ListInboxRequest {
                    bucket: pb::InboxBucket::Unspecified as i32,
                    page_size: 500,
                    ..Default::default()
                })
                .await
                .map_err(|s| DemoError::Call("ListInbox", s))?
                .into_inner()
                .items;
            for a in inbox {
                let Some(f) = self.cases.get(&a.case_id) else {
                    continue;
                };
                let claimable = a.state == pb::AssignmentState::AwaitingAcceptance as i32;
                if claimable && f.accepted.is_none() {
                    // one in ten is left lying past the 15 days of Art. 23 ¶3
                    let waited = a
                        .organ_received_at
                        .as_ref()
                        .map_or(0, |t| (now.timestamp() - t.seconds) / 86_400);
                    let lazy = a.case_number.bytes().map(u32::from).sum::<u32>() % 10 == 0;
                    if lazy && waited < 20 {
                        continue;
                    }
                    match routing
                        .accept_case(pb::AcceptCaseRequest {
                            case_id: a.case_id.clone(),
                            request_id: format!("accept-{}", a.case_id),
                        })
                        .await
                    {
                        Ok(_) => {
                            self.sum.accepted += 1;
                            if lazy {
                                self.sum.accepted_late += 1;
                            }
                            if let Some(f) = self.cases.get_mut(&a.case_id) {
                                f.accepted = Some(day);
                            }
                        }
                        Err(s) => self.refused("AcceptCase", s)?,
                    }
                    continue;
                }
                let Some(accepted) = f.accepted else { continue };
                if f.answered.is_some() {
                    continue;
                }
                let (reply_on, extend_on) = (f.reply_on, f.extend_on);
                if extend_on.is_some_and(|d| accepted + d == day) {
                    self.extend(organ, &a.case_id, day).await?;
                }
                if accepted + reply_on <= day {
                    self.reply(organ, &a.case_id, day, now, reply_on > 60)
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// The holder asks for the one extension; the bureau decides the next day, once
    /// supervision has the request (it arrives as an event).
    async fn extend(&mut self, organ: &str, case_id: &str, day: u32) -> Result<(), DemoError> {
        let asked = self
            .routing(organ, Role::Handler)
            .request_extension(pb::RequestExtensionRequest {
                case_id: case_id.to_owned(),
                days: 30,
                reason: "需要组织听证并调取有关部门材料".into(),
                request_id: format!("extend-{case_id}"),
            })
            .await;
        match asked {
            Ok(_) => {
                if let Some(f) = self.cases.get_mut(case_id) {
                    f.decide_extension_on = Some(day + 1);
                }
                Ok(())
            }
            Err(s) => self.refused("RequestExtension", s),
        }
    }

    /// The bureau whose window registered a case approves the extensions asked of it.
    async fn decide_extensions(&mut self, day: u32) -> Result<(), DemoError> {
        let due: Vec<(String, String)> = self
            .cases
            .iter()
            .filter(|(_, f)| f.decide_extension_on == Some(day))
            .map(|(id, f)| (id.clone(), f.window.clone()))
            .collect();
        for (id, window) in due {
            let decided = self
                .supervision(&window, Role::Leader)
                .decide_extension(pb::DecideExtensionRequest {
                    case_id: id.clone(),
                    approve: true,
                    reason: "情况复杂，同意延期三十日".into(),
                    request_id: format!("decide-{id}"),
                })
                .await;
            match decided {
                Ok(_) => self.sum.extended += 1,
                Err(s) => self.refused("DecideExtension", s)?,
            }
        }
        Ok(())
    }

    async fn reply(
        &mut self,
        organ: &str,
        case_id: &str,
        day: u32,
        now: DateTime<Utc>,
        late: bool,
    ) -> Result<(), DemoError> {
        let outcome = match self.rng.random_range(0..10) {
            0..=5 => pb::ReplyOutcome::Supported,
            6..=8 => pb::ReplyOutcome::Explained,
            _ => pb::ReplyOutcome::NotSupported,
        };
        let replied = self
            .routing(organ, Role::Handler)
            .submit_reply(pb::SubmitReplyRequest {
                case_id: case_id.to_owned(),
                outcome: outcome as i32,
                text: "经调查核实，已依法依规作出处理，现书面答复如下。".into(),
                legal_basis: "《信访工作条例》第三十二条".into(),
                service: Some(pb::ServiceRecord {
                    mode: pb::ServiceMode::InPerson as i32,
                    served_at: Some(ts(now)),
                    signed: true,
                    ..Default::default()
                }),
                request_id: format!("reply-{case_id}"),
            })
            .await;
        match replied {
            Ok(_) => {
                self.sum.answered += 1;
                if late {
                    self.sum.answered_late += 1;
                }
                let review = self.rng.random_bool(0.05);
                if let Some(f) = self.cases.get_mut(case_id) {
                    f.answered = Some(day);
                    f.review_on = review.then_some(day + 5);
                }
                Ok(())
            }
            Err(s) => self.refused("SubmitReply", s),
        }
    }

    /// Petitioners rate their replies, and a few ask the organ one level up to review.
    async fn petitioners(&mut self, day: u32) -> Result<(), DemoError> {
        let due: Vec<(String, String, String, bool, bool)> = self
            .cases
            .iter()
            .filter_map(|(id, f)| {
                let answered = f.answered?;
                let rate = !f.rated && answered + 2 == day;
                let review = f.review_on == Some(day) && f.reviewer.is_none();
                (rate || review).then(|| {
                    (
                        id.clone(),
                        f.case_number.clone(),
                        f.query_code.clone(),
                        rate,
                        review,
                    )
                })
            })
            .collect();
        for (id, number, code, rate, review) in due {
            let mut window = self.supervision("pingcheng.bureau", Role::Clerk);
            if rate && self.rng.random_bool(0.75) {
                let grade = |r: u32| match r {
                    0..=61 => pb::Satisfaction::Satisfied,
                    62..=87 => pb::Satisfaction::BasicallySatisfied,
                    _ => pb::Satisfaction::Dissatisfied,
                };
                let (b, o) = (
                    grade(self.rng.random_range(0..100)),
                    grade(self.rng.random_range(0..100)),
                );
                let unhappy =
                    b == pb::Satisfaction::Dissatisfied || o == pb::Satisfaction::Dissatisfied;
                match window
                    .rate_case(pb::RateCaseRequest {
                        case_number: number.clone(),
                        query_code: code.clone(),
                        bureau: b as i32,
                        organ: o as i32,
                        reason: if unhappy {
                            "问题没有得到实际解决".into()
                        } else {
                            String::new()
                        },
                        request_id: format!("rate-{id}"),
                    })
                    .await
                {
                    Ok(_) => self.sum.rated += 1,
                    Err(s) => self.refused("RateCase", s)?,
                }
            }
            if let Some(f) = self.cases.get_mut(&id) {
                f.rated |= rate;
            }
            if review {
                match window
                    .request_review(pb::RequestReviewRequest {
                        case_number: number,
                        query_code: code,
                        reason: "对答复意见不服，请求复查".into(),
                        request_id: format!("review-{id}"),
                    })
                    .await
                {
                    Ok(t) => {
                        self.sum.reviews += 1;
                        // the reviewing organ decides ten days later
                        let holder = t.into_inner().holder;
                        if let Some(f) = self.cases.get_mut(&id) {
                            f.review_on = Some(day + 10);
                            f.reviewer = Some(holder);
                        }
                    }
                    Err(s) => self.refused("RequestReview", s)?,
                }
            }
        }
        Ok(())
    }
}

fn ts(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

/// The organs whose handlers work cases: every one that is not a petition bureau.
pub fn working_organs(tree: &OrgTree) -> Vec<String> {
    tree.organs()
        .filter(|o| o.kind != OrgKind::Bureau)
        .map(|o| o.id.clone())
        .collect()
}

/// Plays `demo` against the suite at `addr`, whose simulated clock is `clock`, from `days`
/// ago to now; every token is signed with `keys`.
pub async fn run(
    addr: SocketAddr,
    keys: &TokenKeys,
    clock: &SimulatedClock,
    tree: &OrgTree,
    demo: Demo,
) -> Result<Summary, DemoError> {
    use petition_domain::Clock;
    let channel = Channel::from_shared(format!("http://{addr}"))
        .expect("an address")
        .connect()
        .await
        .map_err(|e| DemoError::Connect(addr, e))?;
    let samples: Vec<pb::RegisterPetitionRequest> = SAMPLES
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str::<petition_cli::record::Record>(l)
                .map_err(|e| DemoError::Samples(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        // the window's own petitions: not an upstream system's, not an accusation
        .filter(|r| {
            r.received_by == "pingcheng.bureau"
                && r.source_system.is_empty()
                && r.accused.is_none()
                && r.channel != "upstream"
        })
        .map(|r| r.request())
        .collect();
    if samples.is_empty() {
        return Err(DemoError::Samples(
            "none of the district bureau's own".into(),
        ));
    }
    let organs = working_organs(tree);
    let mut d = Driver {
        channel,
        keys,
        rng: StdRng::seed_from_u64(demo.seed),
        tokens: HashMap::new(),
        cases: BTreeMap::new(),
        earlier: Vec::new(),
        samples,
        sum: Summary::default(),
    };
    let start = clock.now();
    for day in 0..demo.days {
        let now = clock.now();
        let weekend = matches!(beijing_day(now).weekday(), Weekday::Sat | Weekday::Sun);
        let n = if weekend {
            demo.per_day.div_ceil(3)
        } else {
            demo.per_day
        };
        for _ in 0..n {
            d.register(clock.now(), weekend).await?;
        }
        d.work(&organs, day, clock.now()).await?;
        d.petitioners(day).await?;
        d.decide_reviews(day).await?;
        d.decide_extensions(day).await?;
        // the next morning, but never past the real time: the clock runs on from there
        let next = (start + Duration::days(i64::from(day) + 1)).min(Utc::now());
        let step = next - clock.now();
        if step > Duration::zero() {
            clock
                .advance(step)
                .map_err(|e| DemoError::Clock(e.to_string()))?;
        }
        // let the day's events settle before the next morning's work
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    Ok(d.sum)
}

impl Driver<'_> {
    async fn decide_reviews(&mut self, day: u32) -> Result<(), DemoError> {
        let due: Vec<(String, String)> = self
            .cases
            .iter()
            .filter(|(_, f)| f.review_on == Some(day))
            .filter_map(|(id, f)| Some((id.clone(), f.reviewer.clone()?)))
            .collect();
        for (id, holder) in due {
            let decided = self
                .supervision(&holder, Role::Leader)
                .decide_review(pb::DecideReviewRequest {
                    case_id: id.clone(),
                    decision: pb::ReviewDecision::Uphold as i32,
                    opinion: "经复查，原处理意见正确，予以维持。".into(),
                    served_at: None,
                    request_id: format!("decide-review-{id}"),
                })
                .await;
            if let Err(s) = decided {
                self.refused("DecideReview", s)?;
            }
            if let Some(f) = self.cases.get_mut(&id) {
                f.review_on = None;
            }
        }
        Ok(())
    }
}

/// What the demo did, and what to try next, in words for the person who started it.
pub fn told(s: &Summary, addr: SocketAddr) -> String {
    format!(
        "DEMO done: {} petitions registered ({} came back on the same matter), {} accepted ({} after 15 days), \
{} answered ({} late, {} after an extension), {} rated, {} reviews requested; {} calls refused along the way.
Try next (the suite listens on {addr}):
  export PETITION_TOKEN=$(petition token issue --dev --org pingcheng.bureau --role leader)
  petition situation $(TZ=Asia/Shanghai date +%Y)
  petition scorecards $(TZ=Asia/Shanghai date +%Y)
  petition report $(TZ=Asia/Shanghai date +%Y) --out report.html
  petition backlog
  petition notices --organ pingcheng.housing
  export PETITION_TOKEN=$(petition token issue --dev --org pingcheng.housing --role handler)
  petition inbox",
        s.registered,
        s.repeats,
        s.accepted,
        s.accepted_late,
        s.answered,
        s.answered_late,
        s.extended,
        s.rated,
        s.reviews,
        s.refused
    )
}
