//! Every statutory time limit of the 2022 《信访工作条例》, in one place, with its article.
//! (Beware secondary sources quoting the superseded 2005 regulations, whose numbering differs.)

use crate::calendar::Period;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatutoryLimit {
    pub name: &'static str,
    pub article: &'static str,
    pub period: Period,
}

/// The bureau forwards (转送) or assigns (交办) within 15 days of receipt.
pub const FORWARD_OR_ASSIGN: StatutoryLimit = StatutoryLimit {
    name: "forward or assign (转送/交办)",
    article: "Art. 22 ¶1",
    period: Period::CalendarDays(15),
};

/// Written notice (告知) of receipt and route, for matters sent directly to an organ.
pub const NOTICE_OF_RECEIPT: StatutoryLimit = StatutoryLimit {
    name: "written notice to the petitioner (告知)",
    article: "Art. 23 ¶1-2",
    period: Period::CalendarDays(15),
};

/// Written notice by an organ that received a forwarded or assigned matter.
pub const NOTICE_BY_RECEIVING_ORGAN: StatutoryLimit = StatutoryLimit {
    name: "written notice by the receiving organ (告知)",
    article: "Art. 23 ¶3",
    period: Period::CalendarDays(15),
};

/// An organ that is not competent objects (异议) within 5 working days of its receipt — the only
/// working-day period in the regulations.
pub const OBJECTION: StatutoryLimit = StatutoryLimit {
    name: "objection as not competent (异议)",
    article: "Art. 23 ¶3",
    period: Period::WorkingDays(5),
};

/// Handle an Art. 31(6) matter and reply in writing within 60 days of acceptance (受理).
pub const HANDLING: StatutoryLimit = StatutoryLimit {
    name: "handle and reply in writing (办理)",
    article: "Art. 34",
    period: Period::CalendarDays(60),
};

/// At most one extension of at most 30 days, from the end of the 60.
pub const MAX_EXTENSION_DAYS: u32 = 30;
pub const EXTENSION_ARTICLE: &str = "Art. 34";

/// The petitioner may request review (复查) within 30 days of receiving the written reply.
pub const REVIEW_REQUEST: StatutoryLimit = StatutoryLimit {
    name: "request review (复查申请)",
    article: "Art. 35",
    period: Period::CalendarDays(30),
};

/// The organ one level up gives its review opinion within 30 days of the request.
pub const REVIEW_OPINION: StatutoryLimit = StatutoryLimit {
    name: "review opinion (复查意见)",
    article: "Art. 35",
    period: Period::CalendarDays(30),
};

/// The petitioner may request re-examination (复核) within 30 days of the review reply.
pub const REEXAMINATION_REQUEST: StatutoryLimit = StatutoryLimit {
    name: "request re-examination (复核申请)",
    article: "Art. 36",
    period: Period::CalendarDays(30),
};

/// Re-examination opinion within 30 days of the request; hearing (听证) time is not counted.
pub const REEXAMINATION_OPINION: StatutoryLimit = StatutoryLimit {
    name: "re-examination opinion (复核意见)",
    article: "Art. 36",
    period: Period::CalendarDays(30),
};

/// 交办: the organ reports back (办结报告) by the date the bureau sets on each assignment.
pub const ASSIGNMENT_REPORT_NAME: &str = "completion report of an assignment (交办办结报告)";
pub const ASSIGNMENT_REPORT_ARTICLE: &str = "Art. 22 ¶1(3)";

/// The petitioner rates the bureau and the handling organ (满意度评价). The regulations require
/// that handling can be evaluated (Art. 21) but set no window; 7 days from service of the reply
/// is the default, and deployments configure their own (DOMAIN.md §7).
pub const RATING_WINDOW: StatutoryLimit = StatutoryLimit {
    name: "rate the handling (满意度评价)",
    article: "Art. 21",
    period: Period::CalendarDays(7),
};

pub const ALL: [StatutoryLimit; 9] = [
    FORWARD_OR_ASSIGN,
    NOTICE_OF_RECEIPT,
    NOTICE_BY_RECEIVING_ORGAN,
    OBJECTION,
    HANDLING,
    REVIEW_REQUEST,
    REVIEW_OPINION,
    REEXAMINATION_REQUEST,
    REEXAMINATION_OPINION,
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::{CountingPolicy, HolidayCalendar, beijing, deadline, extend};
    use chrono::{NaiveDate, TimeZone, Utc};

    #[test]
    fn only_the_objection_counts_working_days() {
        for l in ALL {
            assert!(l.article.starts_with("Art. "), "{}", l.name);
            match l.period {
                Period::WorkingDays(n) => assert_eq!((l.name, n), (OBJECTION.name, 5)),
                Period::CalendarDays(n) => assert!([15, 30, 60].contains(&n), "{}", l.name),
            }
        }
    }

    #[test]
    fn handling_with_the_one_extension() {
        let cal = HolidayCalendar::from_csv(include_str!("../../../deploy/config/cn-calendar.csv"))
            .unwrap();
        // Accepted Mon 2026-03-02 in Beijing: day 60 is Fri 05-01, inside the Labour Day
        // holiday (05-01..05-05), so the period rolls to Wed 05-06.
        let accepted = beijing()
            .with_ymd_and_hms(2026, 3, 2, 9, 0, 0)
            .unwrap()
            .with_timezone(&Utc);
        let p = CountingPolicy::default();
        let dl = deadline(accepted, HANDLING.period, &cal, p);
        assert_eq!(dl.last_day, NaiveDate::from_ymd_opt(2026, 5, 6).unwrap());
        let ext = extend(dl, MAX_EXTENSION_DAYS, &cal, p);
        assert_eq!(ext.last_day, NaiveDate::from_ymd_opt(2026, 6, 5).unwrap());
    }
}
