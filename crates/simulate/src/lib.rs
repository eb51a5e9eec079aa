//! Realistic petition histories for tests, the demo and benchmarks, written as the pipeline's
//! own events (the envelopes intake, routing and supervision publish), together with a plain
//! record of what was generated — so that a test can compute every figure from the record by
//! its own arithmetic and compare it with what analytics computed from the events.
//!
//! The district is the sample tree's Pingcheng. The mix follows the hot areas of a real yearly
//! report: real estate, expropriation, wage arrears and social security, illegal fundraising;
//! volumes rise before the Spring Festival and at the year's end (wage arrears) and dip in
//! February and October; the online share grows and leapfrog visits fall over the years.
//!
//! Every timing that decides a rate is generated well inside or well outside its limit — routed
//! within 7 days or after 20, accepted within 10 days or after 25, answered days before the
//! last day or after it — so that the record can say "timely" without counting holidays, and
//! a holiday roll-over (at most 8 days) can never turn one into the other.

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use petition_domain::Channel;
use petition_events::Stream;
use petition_grpc::convert::{channel_to_pb, ts};
use petition_proto::v1::{self as pb, EventEnvelope, event_envelope::Payload};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::VecDeque;

/// What to generate.
#[derive(Debug, Clone)]
pub struct Config {
    pub seed: u64,
    /// the first month (its first day, Beijing)
    pub first_month: NaiveDate,
    pub months: u32,
    /// mean cases a month before seasonality
    pub per_month: u32,
    /// the instant the history ends at: nothing happens after it
    pub now: DateTime<Utc>,
    /// extra cases of one matter at one place in one month: a hot spot to find
    pub spikes: Vec<Spike>,
}

/// `cases` more petitions of `category` at `location` in the month starting `month`.
#[derive(Debug, Clone)]
pub struct Spike {
    pub month: NaiveDate,
    pub category: &'static str,
    pub location: &'static str,
    pub cases: u32,
}

/// How routing left a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Forward,
    Assign,
    Diverted,
    Linked,
}

/// Satisfaction as the petitioner gave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rated {
    Satisfied,
    Basically,
    Dissatisfied,
}

impl Rated {
    pub fn is_satisfied(self) -> bool {
        !matches!(self, Rated::Dissatisfied)
    }

    fn to_pb(self) -> pb::Satisfaction {
        match self {
            Rated::Satisfied => pb::Satisfaction::Satisfied,
            Rated::Basically => pb::Satisfaction::BasicallySatisfied,
            Rated::Dissatisfied => pb::Satisfaction::Dissatisfied,
        }
    }
}

/// The record of one generated case: what its events say, and how its timings relate to the
/// limits by construction.
#[derive(Debug, Clone)]
pub struct Truth {
    pub case_id: String,
    pub case_number: String,
    pub channel: Channel,
    pub received_by: String,
    pub received_at: DateTime<Utc>,
    pub registered_at: DateTime<Utc>,
    pub category: String,
    pub location: String,
    pub people_present: u32,
    pub petitioners: u32,
    pub age_band: &'static str,
    pub male: bool,
    pub group: bool,
    pub leapfrog: bool,
    pub repeat_of: Option<String>,
    /// for accusations: the accused organ
    pub accused: Option<String>,
    /// the responsible organ (sent to, or diverted to)
    pub organ: Option<String>,
    pub route: Option<Route>,
    pub routed_at: Option<DateTime<Utc>>,
    /// routed within 10 days of receipt (true) or after 25 (false); None: not routed
    pub routed_timely: Option<bool>,
    /// not routed, and received at least 26 days before `now`: past the 15 days however
    /// holidays fall
    pub unrouted_late: bool,
    pub accepted_at: Option<DateTime<Utc>>,
    pub accepted_timely: Option<bool>,
    /// routed, not accepted, and routed at least 26 days before `now`
    pub unaccepted_late: bool,
    pub handling_due: Option<DateTime<Utc>>,
    pub extended: bool,
    pub answered_at: Option<DateTime<Utc>>,
    pub rating: Option<(Rated, Rated)>,
    pub final_at: Option<DateTime<Utc>>,
    pub urged: bool,
    pub supervised: bool,
    pub leader: bool,
    /// listed as a backlog case (积案) by hand when the leader took charge
    pub backlog_flag: bool,
    pub resolved: bool,
}

impl Truth {
    /// Registered in the pipeline and still to be handled (not diverted or joined, not final,
    /// not resolved).
    pub fn is_open(&self) -> bool {
        self.final_at.is_none()
            && !self.resolved
            && !matches!(self.route, Some(Route::Diverted | Route::Linked))
    }

    /// 人次 as the API documents it.
    pub fn persons(&self) -> u32 {
        if self.people_present > 0 {
            self.people_present
        } else {
            self.petitioners.max(1)
        }
    }
}

/// One case: its record and its events, each with the stream it travels on.
#[derive(Debug, Clone)]
pub struct CaseHistory {
    pub truth: Truth,
    pub events: Vec<(Stream, EventEnvelope)>,
}

const BUREAU: &str = "pingcheng.bureau";

/// (category, weight in thousandths, responsible organ, diverted)
const MIX: [(&str, u32, &str, bool); 20] = [
    ("01.01", 160, "pingcheng.housing", false),
    ("01.04", 100, "pingcheng.expropriation", false),
    ("01.05", 60, "pingcheng.street.beiguan", false),
    ("01.02", 50, "pingcheng.housing", false),
    ("01.03", 30, "pingcheng.housing", false),
    ("02.01", 120, "pingcheng.hrss", false),
    ("02.02", 60, "pingcheng.hrss", false),
    ("02.03", 30, "pingcheng.arbitration", true),
    ("03.01", 50, "pingcheng.finance", false),
    ("03.02", 30, "pingcheng.finance", false),
    ("04", 50, "pingcheng.town.shuibosi", false),
    ("05", 50, "pingcheng.market", false),
    ("06", 60, "pingcheng.urban", false),
    ("07", 40, "pingcheng.education", false),
    ("08.01", 20, "pingcheng.court", true),
    ("08.02", 10, "pingcheng.court", true),
    ("08.03", 10, "pingcheng.reconsideration", true),
    ("09.01", 30, "pingcheng.discipline", false),
    ("10", 30, "pingcheng.civil", false),
    ("11", 10, "pingcheng.civil", false),
];

/// Organs accusations are made against.
const ACCUSED: [&str; 3] = [
    "pingcheng.bureau",
    "pingcheng.expropriation",
    "pingcheng.street.nanguan",
];

const LOCATIONS: [(&str, u32); 5] = [
    ("140213001", 30),
    ("140213002", 25),
    ("140213003", 20),
    ("140213200", 15),
    ("140213", 10),
];

const AGE_BANDS: [&str; 6] = ["18-29", "30-39", "40-49", "50-59", "60-69", "70+"];

/// More before the Spring Festival and at the year's end (wage arrears), fewer in February
/// and in the October holidays.
const SEASON: [f64; 12] = [
    1.25, 0.8, 1.0, 1.0, 1.0, 1.05, 1.0, 0.95, 1.0, 0.85, 1.05, 1.2,
];

fn beijing(d: NaiveDate, minutes: i64) -> DateTime<Utc> {
    chrono::FixedOffset::east_opt(8 * 3600)
        .expect("UTC+8")
        .from_local_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight"))
        .single()
        .expect("Beijing has no gaps")
        .with_timezone(&Utc)
        + Duration::minutes(minutes)
}

/// 24:00 Beijing at the end of the day `days` after `t`'s day: how a limit's instant reads.
fn end_of_day_after(t: DateTime<Utc>, days: i64) -> DateTime<Utc> {
    let d = (t + Duration::hours(8)).date_naive() + Duration::days(days + 1);
    beijing(d, 0)
}

pub struct Simulator {
    cfg: Config,
    rng: StdRng,
    /// recent cases a repeat may refer to: (case id, category, location)
    recent: VecDeque<(String, String, String)>,
    sequence: u32,
    year: i32,
    /// the matter and place of the spike being generated
    forced: Option<(&'static str, &'static str)>,
}

impl Simulator {
    pub fn new(cfg: Config) -> Self {
        Simulator {
            rng: StdRng::seed_from_u64(cfg.seed),
            recent: VecDeque::new(),
            sequence: 0,
            year: cfg.first_month.year(),
            forced: None,
            cfg,
        }
    }

    /// Every case of the history, month by month, oldest first, generated as it is taken.
    pub fn cases(mut self) -> impl Iterator<Item = CaseHistory> {
        let months = self.cfg.months;
        (0..months)
            .flat_map(move |i| self.month(i))
            .collect::<Vec<_>>()
            .into_iter()
    }

    /// The cases received in the `i`-th month.
    pub fn month(&mut self, i: u32) -> Vec<CaseHistory> {
        let first = self
            .cfg
            .first_month
            .checked_add_months(chrono::Months::new(i))
            .expect("a month");
        let next = first
            .checked_add_months(chrono::Months::new(1))
            .expect("a month");
        let days = (next - first).num_days();
        let season = SEASON[first.month0() as usize];
        let n = (f64::from(self.cfg.per_month) * season * self.rng.random_range(0.9..1.1)).round()
            as u32;
        let progress = f64::from(i) / f64::from(self.cfg.months.max(1));
        let mut out = Vec::new();
        for k in 0..n {
            let day = first + Duration::days(self.rng.random_range(0..days));
            // a few at 00:10 on the first of the month: UTC still says the month before
            let minutes = if k % 97 == 0 {
                10
            } else {
                self.rng.random_range(8 * 60..18 * 60)
            };
            let received = beijing(if k % 97 == 0 { first } else { day }, minutes);
            if received >= self.cfg.now - Duration::hours(1) {
                continue;
            }
            out.push(self.case(received, progress));
        }
        for spike in self.cfg.spikes.clone() {
            if spike.month != first {
                continue;
            }
            self.forced = Some((spike.category, spike.location));
            for _ in 0..spike.cases {
                let day = first + Duration::days(self.rng.random_range(0..days));
                let received = beijing(day, self.rng.random_range(8 * 60..18 * 60));
                if received < self.cfg.now - Duration::hours(1) {
                    out.push(self.case(received, progress));
                }
            }
            self.forced = None;
        }
        out
    }

    fn pick<T: Copy>(&mut self, items: &[(T, u32)]) -> T {
        let total: u32 = items.iter().map(|(_, w)| w).sum();
        let mut r = self.rng.random_range(0..total);
        for (t, w) in items {
            if r < *w {
                return *t;
            }
            r -= w;
        }
        items[0].0
    }

    fn uuid(&mut self) -> String {
        uuid::Builder::from_random_bytes(self.rng.random())
            .into_uuid()
            .to_string()
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p.clamp(0.0, 1.0))
    }

    fn case(&mut self, received_at: DateTime<Utc>, progress: f64) -> CaseHistory {
        let now = self.cfg.now;
        let case_id = self.uuid();
        let year = (received_at + Duration::hours(8)).year();
        if year != self.year {
            self.year = year;
            self.sequence = 0;
        }
        self.sequence += 1;
        let case_number = format!("140213-{year}-{:06}", self.sequence);
        // online grows from 45% to 65% over the history; visits shrink
        let online = (450.0 + 200.0 * progress) as u32;
        let channel = self.pick(&[
            (Channel::Online, online),
            (Channel::Visit, 260 - (100.0 * progress) as u32),
            (Channel::Letter, 120),
            (Channel::Phone, 100),
            (Channel::Upstream, 40),
        ]);
        let mix: Vec<(usize, u32)> = MIX.iter().enumerate().map(|(i, m)| (i, m.1)).collect();
        let (mut category, _, mut organ, mut diverted) = MIX[self.pick(&mix)];
        let mut location = self.pick(&LOCATIONS).to_owned();
        if let Some((c, l)) = self.forced
            && let Some(m) = MIX.iter().find(|m| m.0 == c)
        {
            (category, organ, diverted) = (m.0, m.2, m.3);
            location = l.to_owned();
        }
        let visit = channel == Channel::Visit;
        let group = visit && self.chance(0.06);
        let people_present = if group {
            self.rng.random_range(5..30)
        } else if visit {
            self.rng.random_range(1..3)
        } else {
            0
        };
        let petitioners = if visit {
            1
        } else {
            self.rng.random_range(1..3)
        };
        let leapfrog = visit && self.chance(0.12 - 0.06 * progress);
        let received_by = if leapfrog {
            if self.chance(0.3) {
                "shanxi.bureau"
            } else {
                "datong.bureau"
            }
        } else {
            BUREAU
        };
        let repeat_of = if self.chance(0.08) {
            self.recent
                .iter()
                .rev()
                .find(|(_, c, l)| c == category && *l == location)
                .map(|(id, _, _)| id.clone())
        } else {
            None
        };
        let accusation = category.starts_with("09");
        let accused = accusation.then(|| {
            let i = self.rng.random_range(0..ACCUSED.len());
            ACCUSED[i].to_owned()
        });
        let registered_at = match channel {
            Channel::Letter => received_at + Duration::hours(self.rng.random_range(2..60)),
            _ => received_at + Duration::minutes(self.rng.random_range(1..40)),
        }
        .min(now - Duration::minutes(30));
        let age_band = AGE_BANDS[self.rng.random_range(0..AGE_BANDS.len())];
        let male = self.chance(0.58);
        self.recent
            .push_back((case_id.clone(), category.to_owned(), location.clone()));
        if self.recent.len() > 400 {
            self.recent.pop_front();
        }
        let mut t = Truth {
            case_id: case_id.clone(),
            case_number: case_number.clone(),
            channel,
            received_by: received_by.to_owned(),
            received_at,
            registered_at,
            category: category.to_owned(),
            location: location.clone(),
            people_present,
            petitioners,
            age_band,
            male,
            group,
            leapfrog,
            repeat_of: repeat_of.clone(),
            accused: accused.clone(),
            organ: None,
            route: None,
            routed_at: None,
            routed_timely: None,
            unrouted_late: false,
            accepted_at: None,
            accepted_timely: None,
            unaccepted_late: false,
            handling_due: None,
            extended: false,
            answered_at: None,
            rating: None,
            final_at: None,
            urged: false,
            supervised: false,
            leader: false,
            backlog_flag: false,
            resolved: false,
        };
        let mut events = Vec::new();
        self.route_and_handle(&mut t, &mut events, diverted, organ);
        let mut all = vec![];
        // the registration first, as intake publishes it
        self.emit(
            &mut all,
            &t,
            Stream::Intake,
            registered_at,
            registration(&t),
        );
        all.extend(events);
        CaseHistory {
            truth: t,
            events: all,
        }
    }

    /// Routing, acceptance, handling, answer, rating, review and closure, each with the chance
    /// and timing of a real district, cut off at `now`.
    fn route_and_handle(
        &mut self,
        t: &mut Truth,
        out: &mut Vec<(Stream, EventEnvelope)>,
        diverted: bool,
        organ: &str,
    ) {
        let now = self.cfg.now;
        let case_id = t.case_id.clone();
        let case_number = t.case_number.clone();
        let mut route_days = if self.chance(0.93) {
            self.rng.random_range(0..=7)
        } else {
            self.rng.random_range(25..=35)
        };
        // Not routed by now and received 13 to 25 days ago: whether the 15 days have run out
        // would depend on holidays; such a case is routed at once instead.
        let age = now - t.received_at;
        if t.registered_at + Duration::days(route_days) + Duration::hours(1) >= now
            && age > Duration::days(13)
            && age < Duration::days(26)
        {
            route_days = 0;
        }
        let routed_at = t.registered_at + Duration::days(route_days) + Duration::hours(1);
        // a few recent petitions lie forgotten at the bureau, past the limit
        let stuck = age >= Duration::days(26) && age < Duration::days(60) && self.chance(0.08);
        if routed_at >= now || stuck {
            t.unrouted_late = age >= Duration::days(26);
            return;
        }
        let linked = t.repeat_of.is_some() && self.chance(0.3);
        let route = if linked {
            Route::Linked
        } else if diverted {
            Route::Diverted
        } else if self.chance(0.3) {
            Route::Assign
        } else {
            Route::Forward
        };
        t.route = Some(route);
        let sent = matches!(route, Route::Forward | Route::Assign);
        if sent {
            t.routed_at = Some(routed_at);
            t.routed_timely = Some(route_days <= 7);
            t.organ = Some(organ.to_owned());
        }
        self.emit(
            out,
            t,
            Stream::Routing,
            routed_at,
            Payload::PetitionRouted(pb::PetitionRouted {
                case_id: case_id.clone(),
                case_number: case_number.clone(),
                organ: if route == Route::Linked {
                    String::new()
                } else {
                    organ.to_owned()
                },
                outcome: match route {
                    Route::Diverted => pb::RouteOutcome::Diverted,
                    Route::Linked => pb::RouteOutcome::Linked,
                    _ => pb::RouteOutcome::Sent,
                } as i32,
                mode: match route {
                    Route::Assign => pb::HandlingMode::Assign,
                    _ => pb::HandlingMode::Forward,
                } as i32,
                routed_at: Some(ts(routed_at)),
                forwarding_bureau: BUREAU.to_owned(),
                accused_organ_id: t.accused.clone().unwrap_or_default(),
                ..Default::default()
            }),
        );
        if !sent {
            return;
        }
        let mut accept_days = if self.chance(0.9) {
            self.rng.random_range(0..=10)
        } else {
            self.rng.random_range(25..=35)
        };
        let age = now - routed_at;
        if routed_at + Duration::days(accept_days) + Duration::hours(2) >= now
            && age > Duration::days(13)
            && age < Duration::days(26)
        {
            accept_days = 0;
        }
        let accepted_at = routed_at + Duration::days(accept_days) + Duration::hours(2);
        let stuck = age >= Duration::days(26) && age < Duration::days(60) && self.chance(0.08);
        if accepted_at >= now || stuck {
            t.unaccepted_late = age >= Duration::days(26);
            return;
        }
        t.accepted_at = Some(accepted_at);
        t.accepted_timely = Some(accept_days <= 10);
        let mut due = end_of_day_after(accepted_at, 60);
        t.handling_due = Some(due);
        self.emit(
            out,
            t,
            Stream::Routing,
            accepted_at,
            Payload::CaseAccepted(pb::CaseAccepted {
                case_id: case_id.clone(),
                case_number: case_number.clone(),
                organ: organ.to_owned(),
                accepted_at: Some(ts(accepted_at)),
                handling_due: Some(ts(due)),
                handling_due_provisional: false,
            }),
        );
        let hard = self.chance(0.05);
        if hard && accepted_at + Duration::days(50) < now {
            // an extension, approved (Art. 34)
            let at = accepted_at + Duration::days(50);
            due = end_of_day_after(accepted_at, 90);
            t.handling_due = Some(due);
            t.extended = true;
            self.emit(
                out,
                t,
                Stream::Supervision,
                at,
                Payload::ExtensionDecided(pb::ExtensionDecided {
                    case_id: case_id.clone(),
                    case_number: case_number.clone(),
                    approved: true,
                    days: 30,
                    reason: "需要调查核实".into(),
                    handling_due: Some(ts(due)),
                    organ: organ.to_owned(),
                    handling_due_provisional: false,
                }),
            );
        }
        // answered well before the last day, or after it
        let late = self.chance(0.08);
        let answered_at = if late {
            due + Duration::days(self.rng.random_range(3..30))
        } else {
            accepted_at + Duration::days(self.rng.random_range(5..45))
        };
        if answered_at > due && due < now {
            t.urged = true;
            self.notice(
                out,
                t,
                organ,
                pb::NoticeKind::Urging,
                due + Duration::hours(10),
            );
        }
        if self.chance(0.03) && accepted_at + Duration::days(20) < now {
            t.supervised = true;
            let at = accepted_at + Duration::days(20);
            self.notice(out, t, organ, pb::NoticeKind::Supervision, at);
        }
        if (hard || t.repeat_of.is_some())
            && self.chance(0.4)
            && accepted_at + Duration::days(3) < now
        {
            t.leader = true;
            let at = accepted_at + Duration::days(3);
            let backlog = self.rng.random_bool(0.5);
            t.backlog_flag = backlog;
            self.emit(
                out,
                t,
                Stream::Supervision,
                at,
                Payload::LeaderTookCharge(pb::LeaderTookCharge {
                    case_id: case_id.clone(),
                    case_number: case_number.clone(),
                    organ: BUREAU.to_owned(),
                    target_date: (at + Duration::days(60)).date_naive().to_string(),
                    backlog,
                    taken_at: Some(ts(at)),
                }),
            );
        }
        if answered_at >= now {
            return;
        }
        t.answered_at = Some(answered_at);
        let served = answered_at + Duration::hours(20);
        self.emit(
            out,
            t,
            Stream::Routing,
            answered_at,
            Payload::CaseAnswered(pb::CaseAnswered {
                case_id: case_id.clone(),
                case_number: case_number.clone(),
                organ: organ.to_owned(),
                outcome: pb::ReplyOutcome::Supported as i32,
                replied_at: Some(ts(answered_at)),
                served_at: Some(ts(served)),
                ..Default::default()
            }),
        );
        let rated_at = served + Duration::days(self.rng.random_range(1..6));
        if self.chance(0.75) && rated_at < now {
            let grade = |sim: &mut Self| {
                let r = sim.rng.random_range(0..100);
                if r < 62 {
                    Rated::Satisfied
                } else if r < 88 {
                    Rated::Basically
                } else {
                    Rated::Dissatisfied
                }
            };
            let (b, o) = (grade(self), grade(self));
            t.rating = Some((b, o));
            self.emit(
                out,
                t,
                Stream::Supervision,
                rated_at,
                Payload::CaseRated(pb::CaseRated {
                    case_id: case_id.clone(),
                    case_number: case_number.clone(),
                    bureau: b.to_pb() as i32,
                    organ: o.to_pb() as i32,
                    bureau_organ: BUREAU.to_owned(),
                    handling_organ: organ.to_owned(),
                    rated_at: Some(ts(rated_at)),
                }),
            );
        }
        if t.leader && self.chance(0.8) {
            let at = answered_at + Duration::days(2);
            if at < now {
                t.resolved = true;
                self.emit(
                    out,
                    t,
                    Stream::Supervision,
                    at,
                    Payload::CaseResolved(pb::CaseResolved {
                        case_id: case_id.clone(),
                        case_number: case_number.clone(),
                        petitioner_confirmed: true,
                        resolved_at: Some(ts(at)),
                    }),
                );
            }
        }
        let final_at = end_of_day_after(served, 30);
        if final_at < now {
            t.final_at = Some(final_at);
            self.emit(
                out,
                t,
                Stream::Supervision,
                final_at,
                Payload::CaseFinal(pb::CaseFinal {
                    case_id: case_id.clone(),
                    case_number: case_number.clone(),
                    reason: pb::FinalReason::WindowLapsed as i32,
                    final_at: Some(ts(final_at)),
                }),
            );
        }
    }

    /// A notice about the handling clock sent to `organ`.
    fn notice(
        &mut self,
        out: &mut Vec<(Stream, EventEnvelope)>,
        t: &Truth,
        organ: &str,
        kind: pb::NoticeKind,
        at: DateTime<Utc>,
    ) {
        let payload = Payload::NoticeIssued(pb::NoticeIssued {
            case_id: t.case_id.clone(),
            case_number: t.case_number.clone(),
            notice_id: format!("{}-{}", kind.as_str_name(), t.case_id),
            organ: organ.to_owned(),
            kind: kind as i32,
            clock: pb::ClockKind::Handling as i32,
            issued_at: Some(ts(at)),
        });
        self.emit(out, t, Stream::Supervision, at, payload);
    }

    fn emit(
        &mut self,
        out: &mut Vec<(Stream, EventEnvelope)>,
        t: &Truth,
        stream: Stream,
        at: DateTime<Utc>,
        payload: Payload,
    ) {
        let mut ev = Events {
            case_id: &t.case_id,
            case_number: &t.case_number,
            out: Vec::new(),
            rng: &mut self.rng,
        };
        ev.push(stream, at, payload);
        out.extend(ev.out);
    }
}

fn registration(t: &Truth) -> Payload {
    let accusation = t.accused.is_some();
    Payload::PetitionRegistered(pb::PetitionRegistered {
        case_id: t.case_id.clone(),
        case_number: t.case_number.clone(),
        channel: channel_to_pb(t.channel) as i32,
        received_by: t.received_by.clone(),
        received_at: Some(ts(t.received_at)),
        category: t.category.clone(),
        type_of_matter: if accusation {
            pb::TypeOfMatter::Accusation
        } else if t.category == "11" {
            pb::TypeOfMatter::Suggestion
        } else {
            pb::TypeOfMatter::Grievance
        } as i32,
        problem_location: t.location.clone(),
        people_present: t.people_present,
        people_affected: t.people_present.max(t.petitioners),
        petitioner_count: t.petitioners,
        main_age_band: t.age_band.to_owned(),
        main_sex: if t.male {
            pb::Sex::Male
        } else {
            pb::Sex::Female
        } as i32,
        flags: Some(pb::CaseFlags {
            group: t.group,
            leapfrog: t.leapfrog,
            repeat: t.repeat_of.is_some(),
            repeat_of_case_id: t.repeat_of.clone().unwrap_or_default(),
            ..Default::default()
        }),
        accused_organ_id: t.accused.clone().unwrap_or_default(),
        ..Default::default()
    })
}

struct Events<'a> {
    case_id: &'a str,
    case_number: &'a str,
    out: Vec<(Stream, EventEnvelope)>,
    rng: &'a mut StdRng,
}

impl Events<'_> {
    fn push(&mut self, stream: Stream, at: DateTime<Utc>, payload: Payload) {
        let _ = self.case_number;
        let producer = match stream {
            Stream::Intake => "intake",
            Stream::Routing => "routing",
            Stream::Supervision => "supervision",
        };
        let id = uuid::Builder::from_unix_timestamp_millis(
            at.timestamp_millis().max(0) as u64,
            &self.rng.random(),
        )
        .into_uuid();
        self.out.push((
            stream,
            EventEnvelope {
                event_id: id.to_string(),
                case_id: self.case_id.to_owned(),
                r#type: petition_events::event_type(&payload).to_owned(),
                occurred_at: Some(ts(at)),
                producer: producer.to_owned(),
                trace: None,
                payload: Some(payload),
            },
        ));
    }
}

/// The month a time falls in, in Beijing: the test's own arithmetic (UTC+8, no calendar).
pub fn beijing_month(t: DateTime<Utc>) -> (i32, u32) {
    let d = (t + Duration::hours(8)).date_naive();
    (d.year(), d.month())
}
