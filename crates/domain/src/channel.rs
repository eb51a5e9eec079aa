//! Channels a petition arrives by (Art. 17, 19, 21).

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// 走访
    Visit,
    /// 书信
    Letter,
    /// 网上信访
    Online,
    /// 电话
    Phone,
    /// 传真
    Fax,
    /// from a higher level, a 12345 hotline or another platform
    Upstream,
}

impl Channel {
    pub const ALL: [Channel; 6] = [
        Channel::Visit,
        Channel::Letter,
        Channel::Online,
        Channel::Phone,
        Channel::Fax,
        Channel::Upstream,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Visit => "visit",
            Channel::Letter => "letter",
            Channel::Online => "online",
            Channel::Phone => "phone",
            Channel::Fax => "fax",
            Channel::Upstream => "upstream",
        }
    }

    /// Written channels produce a document; visits and calls are recorded by the clerk.
    pub fn is_in_person(self) -> bool {
        matches!(self, Channel::Visit)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown channel {0:?} (expected visit, letter, online, phone, fax or upstream)")]
pub struct UnknownChannel(pub String);

impl FromStr for Channel {
    type Err = UnknownChannel;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Channel::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownChannel(s.to_owned()))
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_text() {
        for c in Channel::ALL {
            assert_eq!(c.as_str().parse::<Channel>().unwrap(), c);
        }
        assert!("walk-in".parse::<Channel>().is_err());
    }
}
