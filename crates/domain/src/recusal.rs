//! Recusal (回避, Art. 28 ¶3): staff with a direct interest in a petition's matter or in the
//! petitioner must not handle it. A recorded recusal takes the case out of that person's sight
//! in every service: they cannot be given it, see it or act on it.

crate::text_enum! {
    pub enum RecusalReason {
        /// 近亲属: a close relative of the petitioner or of a party
        Relative = "relative",
        /// 当事人: a party to the matter
        Party = "party",
        /// 被反映人: the person the petition is about
        Accused = "accused",
        /// 其他利害关系: another direct interest
        OtherInterest = "other_interest",
    }
}

impl RecusalReason {
    /// The reason as the law's practice names it.
    pub fn label(self) -> &'static str {
        match self {
            RecusalReason::Relative => "近亲属",
            RecusalReason::Party => "当事人",
            RecusalReason::Accused => "被反映人",
            RecusalReason::OtherInterest => "其他利害关系",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_text() {
        for r in RecusalReason::ALL {
            assert_eq!(r.as_str().parse::<RecusalReason>().unwrap(), *r);
            assert!(!r.label().is_empty());
        }
        let err = "friend".parse::<RecusalReason>().unwrap_err();
        assert!(err.to_string().contains("relative, party"), "{err}");
    }
}
