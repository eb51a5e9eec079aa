//! Registration rules (登记, Art. 19-23): what makes a petition form acceptable, and the flags
//! computed at intake — group (集体访), leapfrog (越级访), repeat (重复信访) and "same matter open
//! below" (Art. 19 ¶3).

use crate::calendar::beijing_time;
use crate::category::{Diversion, Taxonomy, TypeOfMatter};
use crate::channel::Channel;
use crate::identity::{IdType, ResidentId, Sex, normalize_phone};
use crate::org::{OrgKind, OrgTree};
use crate::region::RegionCode;
pub use crate::validation::Violation;
use crate::validation::{check_text, shown};
use chrono::{DateTime, Duration, FixedOffset, TimeZone, Utc};

/// Policy knobs where the law is silent (DOMAIN.md marks them unsettled).
#[derive(Debug, Clone)]
pub struct IntakePolicy {
    /// People present at or above which a visit is a group visit; common practice says 5.
    pub group_threshold: u32,
    /// How far back an earlier petition of the same person on the same matter makes a repeat.
    pub repeat_window: Duration,
    /// Tolerance for clocks of upstream systems that run slightly ahead of ours.
    pub max_clock_skew: Duration,
    /// Nothing received before this is registered: a date before it is a typing or clock error
    /// (the default, 2000-01-01 Beijing time, predates every electronic petition system).
    pub earliest_received_at: DateTime<Utc>,
}

impl Default for IntakePolicy {
    fn default() -> Self {
        Self {
            group_threshold: 5,
            repeat_window: Duration::days(365),
            max_clock_skew: Duration::minutes(5),
            earliest_received_at: FixedOffset::east_opt(8 * 3600)
                .expect("UTC+8")
                .with_ymd_and_hms(2000, 1, 1, 0, 0, 0)
                .single()
                .expect("a valid date")
                .to_utc(),
        }
    }
}

/// Art. 20 ¶3: a group visit chooses at most five representatives.
pub const MAX_REPRESENTATIVES: u32 = 5;
pub const MAX_TITLE_CHARS: usize = 200;
pub const MAX_CONTENT_CHARS: usize = 20_000;
pub const MAX_PETITIONERS: usize = 500;
pub const MAX_NAME_CHARS: usize = 100;
pub const MAX_ADDRESS_CHARS: usize = 300;
pub const MAX_ID_NUMBER_CHARS: usize = 40;
pub const MAX_ACCUSED_CHARS: usize = 200;
/// The idempotency key's parts are identifiers, not prose: short, and plain ASCII.
pub const MAX_SOURCE_SYSTEM_CHARS: usize = 64;
pub const MAX_EXTERNAL_REF_CHARS: usize = 128;

#[derive(Debug, Clone, Default)]
pub struct PetitionerForm {
    pub name: String,
    pub id_type: Option<IdType>,
    pub id_number: String,
    pub phone: String,
    pub address: String,
    pub is_main: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accused {
    pub name: String,
    pub organ_id: String,
}

/// A registration as submitted, before any rule has looked at it.
#[derive(Debug, Clone, Default)]
pub struct PetitionForm {
    pub channel: Option<Channel>,
    pub received_by: String,
    pub received_at: Option<DateTime<Utc>>,
    pub petitioners: Vec<PetitionerForm>,
    pub category: String,
    pub problem_location: String,
    pub title: String,
    pub content: String,
    pub people_present: u32,
    pub people_affected: u32,
    pub representatives: u32,
    pub accused: Option<Accused>,
    pub source_system: String,
    pub external_ref: String,
}

#[derive(Debug, Clone)]
pub struct ValidPetitioner {
    pub name: String,
    pub id_type: Option<IdType>,
    /// Normalised (upper-case X); `None` when the petitioner gave no identity document.
    pub id_number: Option<String>,
    pub phone: Option<String>,
    pub address: Option<String>,
    pub is_main: bool,
    pub sex: Option<Sex>,
    pub age_band: Option<&'static str>,
}

#[derive(Debug, Clone)]
pub struct ValidPetition {
    pub channel: Channel,
    pub received_by: String,
    pub received_at: DateTime<Utc>,
    pub petitioners: Vec<ValidPetitioner>,
    pub category: String,
    pub type_of_matter: TypeOfMatter,
    pub diversion: Option<Diversion>,
    pub problem_location: RegionCode,
    pub title: String,
    pub content: String,
    pub people_present: u32,
    pub people_affected: u32,
    pub representatives: u32,
    pub accused: Option<Accused>,
    /// `(source_system, external_ref)`, the upstream idempotency key.
    pub idempotency_key: Option<(String, String)>,
    pub competent_organ: Option<String>,
    pub group: bool,
    pub leapfrog: bool,
}

impl ValidPetition {
    /// The accused party's organ, which Art. 30 ¶3 shields the accuser from: recorded for
    /// accusations only, so that a grievance naming a department still reaches that department.
    pub fn accused_organ(&self) -> Option<&str> {
        self.accused
            .as_ref()
            .filter(|_| self.type_of_matter == TypeOfMatter::Accusation)
            .map(|a| a.organ_id.as_str())
            .filter(|o| !o.is_empty())
    }

    pub fn main_petitioner(&self) -> &ValidPetitioner {
        self.petitioners
            .iter()
            .find(|p| p.is_main)
            .unwrap_or(&self.petitioners[0])
    }
}

/// Everything the rules need to judge a form.
pub struct IntakeContext<'a> {
    pub tree: &'a OrgTree,
    pub taxonomy: &'a Taxonomy,
    pub policy: &'a IntakePolicy,
    pub now: DateTime<Utc>,
}

/// Checks every field and reports every broken rule at once, so a clerk fixes a form in one go.
pub fn validate(
    form: &PetitionForm,
    ctx: &IntakeContext<'_>,
) -> Result<ValidPetition, Vec<Violation>> {
    let mut v = Vec::new();
    let beijing = FixedOffset::east_opt(8 * 3600).expect("UTC+8");
    let today = ctx.now.with_timezone(&beijing).date_naive();

    let channel = form.channel;
    if channel.is_none() {
        v.push(Violation::new(
            "channel",
            "required: one of visit, letter, online, phone, fax, upstream (Art. 17)",
        ));
    }

    let receiver = ctx.tree.get(&form.received_by);
    if form.received_by.is_empty() {
        v.push(Violation::new(
            "received_by",
            "required: the id of the organ that received the petition",
        ));
    } else if receiver.is_none() {
        v.push(Violation::new(
            "received_by",
            format!(
                "organ {} is not in the organisation tree",
                shown(&form.received_by)
            ),
        ));
    }

    match form.received_at {
        None => v.push(Violation::new(
            "received_at",
            "required: when the petition was received (登记 on receipt, Art. 22)",
        )),
        Some(at) if at > ctx.now + ctx.policy.max_clock_skew => v.push(Violation::new(
            "received_at",
            format!(
                "{} lies in the future; a petition can only be registered once received",
                beijing_time(at)
            ),
        )),
        Some(at) if at < ctx.policy.earliest_received_at => v.push(Violation::new(
            "received_at",
            format!(
                "{} is before {}, the earliest receipt this deployment accepts",
                beijing_time(at),
                beijing_time(ctx.policy.earliest_received_at)
            ),
        )),
        Some(_) => {}
    }

    let petitioners = validate_petitioners(&form.petitioners, today, &mut v);

    let category = ctx.taxonomy.get(&form.category);
    if form.category.is_empty() {
        v.push(Violation::new(
            "category",
            "required: a content category code (内容分类)",
        ));
    } else if category.is_none() {
        v.push(Violation::new(
            "category",
            format!("{} is not in the category taxonomy", shown(&form.category)),
        ));
    }

    let location = match RegionCode::parse(&form.problem_location) {
        Ok(code) if ctx.tree.covers(&code) => Some(code),
        Ok(code) => {
            v.push(Violation::new(
                "problem_location",
                format!("region {code} is not served by any organ in the organisation tree"),
            ));
            None
        }
        Err(e) => {
            v.push(Violation::new("problem_location", e.to_string()));
            None
        }
    };

    let title = form.title.trim();
    if title.is_empty() {
        v.push(Violation::new(
            "title",
            "required: a short summary of the matter",
        ));
    }
    let content = form.content.trim();
    if content.is_empty() {
        v.push(Violation::new(
            "content",
            "required: the request, facts and reasons (请求、事实、理由, Art. 19)",
        ));
    }

    if channel == Some(Channel::Visit) {
        if form.people_present == 0 {
            v.push(Violation::new(
                "people_present",
                "a visit (走访) has at least one person present",
            ));
        }
        if (form.people_present as usize) < form.petitioners.len() {
            v.push(Violation::new(
                "people_present",
                format!(
                    "{} people present, but {} petitioners were recorded at the visit",
                    form.people_present,
                    form.petitioners.len()
                ),
            ));
        }
    }
    if form.representatives > MAX_REPRESENTATIVES {
        v.push(Violation::new(
            "representatives",
            format!(
                "a group visit chooses at most {MAX_REPRESENTATIVES} representatives (Art. 20 ¶3), got {}",
                form.representatives
            ),
        ));
    } else if channel == Some(Channel::Visit)
        && form.people_present >= ctx.policy.group_threshold
        && form.representatives == 0
    {
        v.push(Violation::new(
            "representatives",
            format!(
                "a visit of {} people (集体访, >= {}) must choose 1-{MAX_REPRESENTATIVES} representatives (Art. 20 ¶3)",
                form.people_present, ctx.policy.group_threshold
            ),
        ));
    } else if form.representatives > form.people_present.max(1) && channel == Some(Channel::Visit) {
        v.push(Violation::new(
            "representatives",
            format!(
                "{} representatives but only {} people present",
                form.representatives, form.people_present
            ),
        ));
    }

    let has_source = !form.source_system.trim().is_empty();
    let has_ref = !form.external_ref.trim().is_empty();
    if has_source != has_ref {
        let missing = if has_source {
            "external_ref"
        } else {
            "source_system"
        };
        v.push(Violation::new(
            missing,
            "source_system and external_ref form the idempotency key and come together",
        ));
    }
    if channel == Some(Channel::Upstream) && !(has_source && has_ref) {
        v.push(Violation::new(
            "external_ref",
            "a petition from an upstream system carries its source_system and external_ref",
        ));
    }

    if let Some(accused) = &form.accused
        && !accused.organ_id.is_empty()
        && ctx.tree.get(&accused.organ_id).is_none()
    {
        v.push(Violation::new(
            "accused.organ_id",
            format!(
                "organ {} is not in the organisation tree",
                shown(&accused.organ_id)
            ),
        ));
    }
    if let Some(accused) = &form.accused {
        check_text(&mut v, "accused.name", &accused.name, MAX_ACCUSED_CHARS);
    }
    check_text(&mut v, "title", &form.title, MAX_TITLE_CHARS);
    check_text(&mut v, "content", &form.content, MAX_CONTENT_CHARS);
    check_identifier(
        &mut v,
        "source_system",
        &form.source_system,
        MAX_SOURCE_SYSTEM_CHARS,
        Charset::Ascii,
    );
    // Case numbers of older systems are often written the official way, 〔2024〕123号.
    check_identifier(
        &mut v,
        "external_ref",
        &form.external_ref,
        MAX_EXTERNAL_REF_CHARS,
        Charset::Printable,
    );

    if !v.is_empty() {
        return Err(v);
    }
    // Every Option below is Some: each None pushed a violation above.
    let (Some(channel), Some(receiver), Some(received_at), Some(category), Some(location)) =
        (channel, receiver, form.received_at, category, location)
    else {
        unreachable!("validated above")
    };

    let competence = ctx
        .tree
        .competent_organ(ctx.taxonomy, &category.code, &location);
    let competent_level = competence
        .organ()
        .map(|o| o.level)
        .or_else(|| ctx.tree.bureau_for(&location).map(|b| b.level));
    // Art. 20 ¶1: a visit goes to the competent organ's level or the one above it.
    let leapfrog = channel == Channel::Visit
        && receiver.kind == OrgKind::Bureau
        && competent_level.is_some_and(|l| l.rank() - receiver.level.rank() > 1);

    Ok(ValidPetition {
        channel,
        received_by: receiver.id.clone(),
        received_at,
        petitioners,
        category: category.code.clone(),
        type_of_matter: category.type_of_matter,
        diversion: category.divert,
        problem_location: location,
        title: title.to_owned(),
        content: content.to_owned(),
        people_present: form.people_present,
        people_affected: form.people_affected,
        representatives: form.representatives,
        accused: form
            .accused
            .clone()
            .filter(|a| !(a.name.is_empty() && a.organ_id.is_empty())),
        idempotency_key: has_source.then(|| {
            (
                form.source_system.trim().to_owned(),
                form.external_ref.trim().to_owned(),
            )
        }),
        competent_organ: competence.organ().map(|o| o.id.clone()),
        group: form.people_present >= ctx.policy.group_threshold,
        leapfrog,
    })
}

/// What characters an identifier may hold.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Charset {
    /// letters, digits and punctuation of ASCII
    Ascii,
    /// any visible character: no spaces, no control characters
    Printable,
}

/// An identifier field (source_system, external_ref): no spaces or control characters, bounded.
fn check_identifier(v: &mut Vec<Violation>, field: &str, value: &str, max: usize, set: Charset) {
    let value = value.trim();
    if value.chars().count() > max {
        v.push(Violation::new(
            field,
            format!("at most {max} characters, got {}", value.chars().count()),
        ));
    } else if set == Charset::Ascii && !value.bytes().all(|b| b.is_ascii_graphic()) {
        v.push(Violation::new(
            field,
            "printable ASCII without spaces (letters, digits and punctuation)",
        ));
    } else if value
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '\u{FFFD}')
    {
        v.push(Violation::new(
            field,
            "visible characters without spaces or control characters",
        ));
    }
}

fn validate_petitioners(
    forms: &[PetitionerForm],
    today: chrono::NaiveDate,
    v: &mut Vec<Violation>,
) -> Vec<ValidPetitioner> {
    if forms.is_empty() {
        v.push(Violation::new(
            "petitioners",
            "at least one petitioner (信访人, Art. 17)",
        ));
    }
    if forms.len() > MAX_PETITIONERS {
        v.push(Violation::new(
            "petitioners",
            format!("at most {MAX_PETITIONERS} petitioners on one case"),
        ));
    }
    let mains = forms.iter().filter(|p| p.is_main).count();
    if mains > 1 {
        v.push(Violation::new(
            "petitioners",
            format!("{mains} petitioners are marked main visitor (主访人); at most one may be"),
        ));
    }
    let mut out = Vec::with_capacity(forms.len());
    for (i, p) in forms.iter().enumerate() {
        let field = |f: &str| format!("petitioners[{i}].{f}");
        check_text(v, &field("name"), &p.name, MAX_NAME_CHARS);
        check_text(v, &field("address"), &p.address, MAX_ADDRESS_CHARS);
        check_text(v, &field("id_number"), &p.id_number, MAX_ID_NUMBER_CHARS);
        let name = p.name.trim();
        if name.is_empty() {
            v.push(Violation::new(
                field("name"),
                "required: 姓名（名称） (Art. 19)",
            ));
        }
        let id_number = p.id_number.trim();
        let mut sex = None;
        let mut age_band = None;
        let mut normalized_id = None;
        match (p.id_type, id_number.is_empty()) {
            (None, false) => v.push(Violation::new(
                field("id_type"),
                "required when an id_number is given: resident_id, passport or other",
            )),
            (Some(_), true) => v.push(Violation::new(
                field("id_number"),
                "required when an id_type is given",
            )),
            (Some(IdType::ResidentId), false) => match ResidentId::parse(id_number, today) {
                Ok(rid) => {
                    sex = Some(rid.sex());
                    age_band = Some(rid.age_band(today));
                    normalized_id = Some(rid.as_str().to_owned());
                }
                Err(e) => v.push(Violation::new(
                    field("id_number"),
                    format!("invalid resident ID (居民身份证号码): {e}"),
                )),
            },
            (Some(_), false) => normalized_id = Some(id_number.to_owned()),
            (None, true) => {}
        }
        let phone = if p.phone.trim().is_empty() {
            None
        } else {
            match normalize_phone(&p.phone) {
                Ok(n) => Some(n),
                Err(e) => {
                    v.push(Violation::new(field("phone"), e.to_string()));
                    None
                }
            }
        };
        let address = Some(p.address.trim().to_owned()).filter(|a| !a.is_empty());
        out.push(ValidPetitioner {
            name: name.to_owned(),
            id_type: p.id_type.filter(|_| normalized_id.is_some()),
            id_number: normalized_id,
            phone,
            address,
            is_main: p.is_main || (mains == 0 && i == 0),
            sex,
            age_band,
        });
    }
    out
}

/// An earlier case of one of the same petitioners on the same matter (category and location).
#[derive(Debug, Clone)]
pub struct PriorCase {
    pub case_id: String,
    pub case_number: String,
    pub received_by: String,
    pub received_at: DateTime<Utc>,
    pub open: bool,
    /// for accusations: whose side must not learn of it (Art. 30 ¶3)
    pub accused_organ: Option<String>,
    /// re-examined (复核): final, and the same matter is not accepted again (Art. 36 ¶3)
    pub reexamined: bool,
}

/// The earlier case of the same matter that was re-examined, if any: a new petition with the
/// same facts is not accepted again (不再受理, Art. 36 ¶3), whenever it comes.
pub fn not_accepted_again(priors: &[PriorCase]) -> Option<&PriorCase> {
    priors
        .iter()
        .filter(|p| p.reexamined)
        .min_by_key(|p| (p.received_at, p.case_number.clone()))
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepeatFlags {
    pub repeat: bool,
    pub repeat_of: Option<(String, String)>,
    /// the linked case is still open: the new petition joins it rather than being handled twice
    pub repeat_of_open: bool,
    pub first_at_organ: bool,
    /// Art. 19 ¶3: the case number open at a lower organ.
    pub open_below: Option<String>,
}

/// Same person, same matter (同人同事): link to the earliest open case within the window.
pub fn repeat_flags(
    priors: &[PriorCase],
    received_by: &str,
    received_at: DateTime<Utc>,
    tree: &OrgTree,
    policy: &IntakePolicy,
) -> RepeatFlags {
    let mut sorted: Vec<&PriorCase> = priors.iter().collect();
    sorted.sort_by_key(|p| (p.received_at, p.case_number.clone()));
    let in_window: Vec<&PriorCase> = sorted
        .iter()
        .copied()
        .filter(|p| {
            p.received_at <= received_at && received_at - p.received_at <= policy.repeat_window
        })
        .collect();
    let linked_case = in_window
        .iter()
        .find(|p| p.open)
        .or_else(|| in_window.first());
    let linked = linked_case.map(|p| (p.case_id.clone(), p.case_number.clone()));
    let receiver_rank = tree.get(received_by).map(|o| o.level.rank());
    let open_below = sorted
        .iter()
        .filter(|p| p.open)
        .find(|p| {
            let prior_rank = tree.get(&p.received_by).map(|o| o.level.rank());
            matches!((prior_rank, receiver_rank), (Some(a), Some(b)) if a > b)
        })
        .map(|p| p.case_number.clone());
    RepeatFlags {
        repeat: linked.is_some(),
        repeat_of_open: linked_case.is_some_and(|p| p.open),
        repeat_of: linked,
        first_at_organ: !sorted.iter().any(|p| p.received_by == received_by),
        open_below,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn fixtures() -> (OrgTree, Taxonomy, IntakePolicy) {
        (
            OrgTree::from_toml(include_str!("../../../deploy/config/orgs.toml")).unwrap(),
            Taxonomy::from_toml(include_str!("../../../deploy/config/categories.toml")).unwrap(),
            IntakePolicy::default(),
        )
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 12, 0, 0, 0).unwrap()
    }

    fn form() -> PetitionForm {
        PetitionForm {
            channel: Some(Channel::Visit),
            received_by: "pingcheng.bureau".into(),
            received_at: Some(Utc.with_ymd_and_hms(2026, 3, 2, 1, 15, 0).unwrap()),
            petitioners: vec![PetitionerForm {
                name: "王建国".into(),
                id_type: Some(IdType::ResidentId),
                id_number: "140213196503121017".into(),
                phone: "13903521234".into(),
                address: "大同市平城区北关街道某小区3号楼".into(),
                is_main: false,
            }],
            category: "01.01".into(),
            problem_location: "140213001".into(),
            title: "逾期未办证".into(),
            content: "请求督促开发商办理不动产权证".into(),
            people_present: 1,
            people_affected: 320,
            ..Default::default()
        }
    }

    fn run(f: &PetitionForm) -> Result<ValidPetition, Vec<Violation>> {
        let (tree, taxonomy, policy) = fixtures();
        validate(
            f,
            &IntakeContext {
                tree: &tree,
                taxonomy: &taxonomy,
                policy: &policy,
                now: now(),
            },
        )
    }

    fn fields(r: Result<ValidPetition, Vec<Violation>>) -> Vec<String> {
        r.unwrap_err().into_iter().map(|v| v.field).collect()
    }

    #[test]
    fn an_ordinary_visit_is_valid_and_derives_what_may_leave_intake() {
        let p = run(&form()).unwrap();
        assert_eq!(p.type_of_matter, TypeOfMatter::Grievance);
        assert_eq!(p.competent_organ.as_deref(), Some("pingcheng.housing"));
        assert!(!p.group && !p.leapfrog);
        let main = p.main_petitioner();
        assert!(
            main.is_main,
            "the first petitioner becomes main when none is marked"
        );
        assert_eq!(main.sex, Some(Sex::Male));
        assert_eq!(main.age_band, Some("60-69"));
    }

    #[test]
    fn hostile_input_is_named_field_by_field() {
        let mut f = form();
        f.title = "标题\0".into();
        f.content = "x".repeat(MAX_CONTENT_CHARS + 1);
        f.petitioners[0].name = "王\u{1b}[31m".into();
        f.source_system = "datong.12345".into();
        f.external_ref = "r".repeat(100_000);
        let errs = run(&f).unwrap_err();
        let rule = |field: &str| {
            errs.iter()
                .find(|v| v.field == field)
                .map(|v| v.rule.clone())
                .unwrap_or_else(|| panic!("no violation for {field}: {errs:?}"))
        };
        assert!(rule("title").contains("NUL (U+0000)"));
        assert!(rule("content").contains("at most 20000 characters"));
        assert!(rule("petitioners[0].name").contains("U+001B"));
        assert!(rule("external_ref").contains("at most 128 characters"));
        assert!(
            errs.iter().all(|v| v.rule.len() < 200),
            "no rule echoes a huge value back: {errs:?}"
        );
        let mut f = form();
        f.external_ref = "ref with spaces".into();
        f.source_system = "datong.12345".into();
        assert_eq!(fields(run(&f)), ["external_ref"]);
    }

    #[test]
    fn received_at_lies_in_the_configured_window() {
        let policy = IntakePolicy::default();
        let mut f = form();
        // The window's edges: 2000-01-01 00:00 Beijing time, and now plus the clock skew.
        f.received_at = Some(policy.earliest_received_at);
        assert!(run(&f).is_ok());
        f.received_at = Some(policy.earliest_received_at - Duration::seconds(1));
        assert_eq!(fields(run(&f)), ["received_at"]);
        f.received_at = Some(Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0).unwrap());
        assert_eq!(fields(run(&f)), ["received_at"]);
        f.received_at = Some(now() + policy.max_clock_skew);
        assert!(run(&f).is_ok());
        f.received_at = Some(now() + policy.max_clock_skew + Duration::seconds(1));
        assert_eq!(fields(run(&f)), ["received_at"]);
    }

    #[test]
    fn only_an_accusation_shields_an_accused_organ() {
        let mut f = form();
        f.accused = Some(Accused {
            name: "某科长".into(),
            organ_id: "pingcheng.housing".into(),
        });
        assert_eq!(run(&f).unwrap().accused_organ(), None);
        f.category = "09.01".into();
        assert_eq!(run(&f).unwrap().accused_organ(), Some("pingcheng.housing"));
    }

    #[test]
    fn group_threshold_edge() {
        let mut f = form();
        f.people_present = 4;
        assert!(!run(&f).unwrap().group);
        f.people_present = 5;
        assert_eq!(
            fields(run(&f)),
            ["representatives"],
            "5 present need representatives"
        );
        f.representatives = 5;
        assert!(run(&f).unwrap().group);
        f.representatives = 6;
        assert_eq!(fields(run(&f)), ["representatives"]);
    }

    #[test]
    fn a_group_letter_needs_no_representatives() {
        let mut f = form();
        f.channel = Some(Channel::Letter);
        f.people_present = 8;
        assert!(run(&f).unwrap().group);
    }

    #[test]
    fn leapfrog_is_more_than_one_level_above_the_competent_organ() {
        let mut f = form();
        f.category = "01.04".into();
        f.problem_location = "140213002".into();
        f.received_by = "datong.bureau".into();
        assert!(
            !run(&f).unwrap().leapfrog,
            "city is one level above the district"
        );
        f.received_by = "shanxi.bureau".into();
        assert!(run(&f).unwrap().leapfrog, "province is two levels above");
        f.channel = Some(Channel::Letter);
        assert!(!run(&f).unwrap().leapfrog, "only visits leapfrog (Art. 20)");
    }

    #[test]
    fn every_bad_field_is_named_at_once() {
        let mut f = form();
        f.channel = None;
        f.received_by = "nowhere.bureau".into();
        f.petitioners[0].id_number = "140213196503121018".into();
        f.petitioners[0].phone = "12345".into();
        f.category = "99".into();
        f.problem_location = "110105".into();
        f.content = "  ".into();
        let got = fields(run(&f));
        for want in [
            "channel",
            "received_by",
            "petitioners[0].id_number",
            "petitioners[0].phone",
            "category",
            "problem_location",
            "content",
        ] {
            assert!(got.iter().any(|g| g == want), "{want} missing in {got:?}");
        }
    }

    #[test]
    fn wrong_check_digit_names_the_rule() {
        let mut f = form();
        f.petitioners[0].id_number = "140213196503121018".into();
        let errs = run(&f).unwrap_err();
        assert_eq!(errs[0].field, "petitioners[0].id_number");
        assert!(errs[0].rule.contains("check digit"), "{}", errs[0].rule);
    }

    #[test]
    fn received_at_may_not_lie_in_the_future() {
        let mut f = form();
        f.received_at = Some(now() + Duration::minutes(4));
        assert!(run(&f).is_ok(), "within the clock-skew tolerance");
        f.received_at = Some(now() + Duration::minutes(6));
        assert_eq!(fields(run(&f)), ["received_at"]);
        f.received_at = None;
        assert_eq!(fields(run(&f)), ["received_at"]);
    }

    #[test]
    fn upstream_needs_its_key_and_the_key_comes_whole() {
        let mut f = form();
        f.channel = Some(Channel::Upstream);
        f.people_present = 0;
        assert_eq!(fields(run(&f)), ["external_ref"]);
        f.source_system = "datong.12345".into();
        assert_eq!(fields(run(&f)), ["external_ref", "external_ref"]);
        f.external_ref = "DT-1".into();
        let p = run(&f).unwrap();
        assert_eq!(
            p.idempotency_key,
            Some(("datong.12345".into(), "DT-1".into()))
        );
    }

    #[test]
    fn petitioner_rules() {
        let mut f = form();
        f.petitioners.clear();
        assert_eq!(fields(run(&f)), ["petitioners"]);
        let mut f = form();
        f.people_present = 2;
        f.petitioners.push(f.petitioners[0].clone());
        f.petitioners[0].is_main = true;
        f.petitioners[1].is_main = true;
        assert_eq!(fields(run(&f)), ["petitioners"]);
        f.petitioners[1].is_main = false;
        f.petitioners[1].id_type = None;
        assert_eq!(fields(run(&f)), ["petitioners[1].id_type"]);
        f.petitioners[1].id_number.clear();
        let p = run(&f).unwrap();
        assert!(p.petitioners[1].id_number.is_none());
    }

    fn prior(n: &str, by: &str, days_before: i64, open: bool) -> PriorCase {
        PriorCase {
            accused_organ: None,
            case_id: format!("id-{n}"),
            case_number: n.into(),
            received_by: by.into(),
            received_at: now() - Duration::days(days_before),
            open,
            reexamined: false,
        }
    }

    #[test]
    fn a_re_examined_matter_is_not_accepted_again_however_long_ago() {
        let mut old = prior("R", "pingcheng.bureau", 2_000, false);
        assert!(not_accepted_again(std::slice::from_ref(&old)).is_none());
        old.reexamined = true;
        let priors = [prior("B", "pingcheng.bureau", 100, false), old];
        assert_eq!(
            not_accepted_again(&priors).map(|p| p.case_number.as_str()),
            Some("R"),
            "outside the repeat window, still final"
        );
    }

    #[test]
    fn repeat_links_the_earliest_open_case_in_the_window() {
        let (tree, _, policy) = fixtures();
        let priors = [
            prior("A", "pingcheng.bureau", 400, true),
            prior("B", "pingcheng.bureau", 100, false),
            prior("C", "pingcheng.bureau", 50, true),
            prior("D", "pingcheng.bureau", 10, true),
        ];
        let f = repeat_flags(&priors, "pingcheng.bureau", now(), &tree, &policy);
        assert!(f.repeat);
        assert_eq!(
            f.repeat_of.unwrap().1,
            "C",
            "A is outside 365 days, B is closed"
        );
        assert!(f.repeat_of_open);
        assert!(!f.first_at_organ);
        // Only a closed case in the window: a repeat, but of a case that is not open to join.
        let closed = [prior("B", "pingcheng.bureau", 100, false)];
        let f = repeat_flags(&closed, "pingcheng.bureau", now(), &tree, &policy);
        assert!(f.repeat && !f.repeat_of_open);
        assert_eq!(f.open_below, None, "same level is not below");
    }

    #[test]
    fn repeat_window_edge() {
        let (tree, _, policy) = fixtures();
        let edge = [prior("E", "pingcheng.bureau", 365, true)];
        assert!(repeat_flags(&edge, "pingcheng.bureau", now(), &tree, &policy).repeat);
        let past = [prior("E", "pingcheng.bureau", 366, true)];
        let f = repeat_flags(&past, "pingcheng.bureau", now(), &tree, &policy);
        assert!(!f.repeat && !f.first_at_organ);
    }

    #[test]
    fn same_matter_open_below_is_flagged_for_the_higher_organ() {
        let (tree, _, policy) = fixtures();
        let priors = [prior("P1", "pingcheng.bureau", 7, true)];
        let f = repeat_flags(&priors, "datong.bureau", now(), &tree, &policy);
        assert!(f.repeat && f.first_at_organ);
        assert_eq!(f.open_below.as_deref(), Some("P1"));
        let closed = [prior("P1", "pingcheng.bureau", 7, false)];
        let f = repeat_flags(&closed, "datong.bureau", now(), &tree, &policy);
        assert_eq!(f.open_below, None);
    }

    #[test]
    fn no_priors_is_a_first_petition() {
        let (tree, _, policy) = fixtures();
        let f = repeat_flags(&[], "pingcheng.bureau", now(), &tree, &policy);
        assert_eq!(
            f,
            RepeatFlags {
                first_at_organ: true,
                ..Default::default()
            }
        );
    }
}
