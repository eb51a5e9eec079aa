//! Channels a petition arrives by (Art. 17, 19, 21).

crate::text_enum! {
    pub enum Channel {
        /// 走访
        Visit = "visit",
        /// 书信
        Letter = "letter",
        /// 网上信访
        Online = "online",
        /// 电话
        Phone = "phone",
        /// 传真
        Fax = "fax",
        /// from a higher level, a 12345 hotline or another platform
        Upstream = "upstream",
    }
}

impl Channel {
    /// Written channels produce a document; visits and calls are recorded by the clerk.
    pub fn is_in_person(self) -> bool {
        matches!(self, Channel::Visit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_text() {
        for c in Channel::ALL {
            assert_eq!(c.as_str().parse::<Channel>().unwrap(), *c);
        }
        let err = "walk-in".parse::<Channel>().unwrap_err();
        assert!(err.to_string().contains("visit, letter, online"), "{err}");
    }
}
