//! Enums that are stored and sent as text, in the shape every such enum here has: `ALL`,
//! `as_str`, `FromStr` with an error that names the allowed values, and `Display`. One macro
//! writes that shape, so a new state or mode is one list of variants and nothing to copy.

/// A text that names no variant of the enum it was read as; stores turn it into a typed
/// corruption error, request handlers into INVALID_ARGUMENT.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {value:?} (expected one of {})", allowed.join(", "))]
pub struct UnknownValue {
    pub kind: &'static str,
    pub value: String,
    pub allowed: &'static [&'static str],
}

/// Declares a text-backed enum: `text_enum! { pub enum Mode { Forward = "forward", … } }`.
/// Attributes (docs, serde derives) pass through to the enum and its variants.
#[macro_export]
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[ $( $name::$variant ),+ ];

            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text ),+
                }
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::text_enum::UnknownValue;

            fn from_str(s: &str) -> ::std::result::Result<Self, Self::Err> {
                match s {
                    $( $text => Ok($name::$variant), )+
                    _ => Err($crate::text_enum::UnknownValue {
                        kind: stringify!($name),
                        value: s.chars().take(40).collect(),
                        allowed: &[ $( $text ),+ ],
                    }),
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

#[cfg(test)]
mod tests {
    crate::text_enum! {
        /// A test enum.
        enum Colour {
            Red = "red",
            /// the other one
            DarkBlue = "dark_blue",
        }
    }

    #[test]
    fn round_trips_and_names_the_allowed_values() {
        for c in Colour::ALL {
            assert_eq!(c.as_str().parse::<Colour>().unwrap(), *c);
            assert_eq!(c.to_string(), c.as_str());
        }
        let err = "green".parse::<Colour>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown Colour \"green\" (expected one of red, dark_blue)"
        );
    }
}
