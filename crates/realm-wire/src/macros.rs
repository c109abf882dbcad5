//! The crate's macros: code enums that keep the codes they do not name
//! (STYLE.md s3, after smoltcp's `enum_with_unknown!`) and the zero-copy view
//! every header format has (`packet_view!`). Declared before every other
//! module in `lib.rs`, so each format module uses them without an import.

/// Declares a `u8`/`u16` code enum with an `Unknown` variant and `From` both
/// ways, so that parse-then-emit loses nothing (`From` never puts a named code
/// in `Unknown`).
///
/// Two forms:
/// - `pub enum Name(u8) { Variant = 1, ... }`: the enum and its conversions.
/// - `pub enum Name(u8), unknown = "what" { Variant = 1 => "RFC name", ... }`:
///   also `as_str` (the RFC's spelling of each code), `is_canonical` and a
///   `Display` that names an unknown code as `what (code)`.
macro_rules! enum_with_unknown {
    (
        $(#[$enum_attr:meta])*
        pub enum $name:ident($ty:ty) {
            $( $(#[$variant_attr:meta])* $variant:ident = $value:literal ),+ $(,)?
        }
    ) => {
        $(#[$enum_attr])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, ::serde::Serialize)]
        pub enum $name {
            $( $(#[$variant_attr])* $variant, )+
            /// A code not named here, kept so that parse-then-emit loses nothing.
            Unknown($ty),
        }

        impl ::core::convert::From<$ty> for $name {
            fn from(value: $ty) -> Self {
                match value {
                    $( $value => $name::$variant, )+
                    other => $name::Unknown(other),
                }
            }
        }

        impl ::core::convert::From<$name> for $ty {
            fn from(value: $name) -> Self {
                match value {
                    $( $name::$variant => $value, )+
                    $name::Unknown(other) => other,
                }
            }
        }
    };
    (
        $(#[$enum_attr:meta])*
        pub enum $name:ident($ty:ty), unknown = $unknown_name:literal {
            $( $(#[$variant_attr:meta])* $variant:ident = $value:literal => $rfc:literal, )+
        }
    ) => {
        enum_with_unknown! {
            $(#[$enum_attr])*
            pub enum $name($ty) {
                $( $(#[$variant_attr])* $variant = $value, )+
            }
        }

        impl $name {
            /// The name the RFC gives this code.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $rfc, )+
                    $name::Unknown(_) => $unknown_name,
                }
            }

            /// False only for an `Unknown` that spells a known code (it would
            /// come back from the wire as the named variant).
            #[allow(dead_code)] // not every code enum needs it
            pub(crate) fn is_canonical(self) -> bool {
                $name::from(<$ty>::from(self)) == self
            }
        }

        impl ::core::fmt::Display for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                match self {
                    $name::Unknown(v) => write!(f, "{} ({})", $unknown_name, v),
                    known => f.write_str(known.as_str()),
                }
            }
        }
    };
}

/// Declares a format's zero-copy view, `Packet<T: AsRef<[u8]>>`, in
/// smoltcp's shape (STYLE.md s1): the struct, `new_unchecked`, `into_inner`,
/// and `new_checked`, which runs the format's own checks in the order given
/// (each a `fn(&self) -> Result<(), Error>` the format module writes: its
/// length checks, version, ...). After `new_checked` no accessor can panic.
macro_rules! packet_view {
    (
        $(#[$attr:meta])*
        checks: [$($check:ident),+ $(,)?] $(,)?
    ) => {
        $(#[$attr])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct Packet<T: AsRef<[u8]>> {
            buffer: T,
        }

        impl<T: AsRef<[u8]>> Packet<T> {
            /// Wraps a buffer without checking anything (see the module doc).
            pub const fn new_unchecked(buffer: T) -> Packet<T> {
                Packet { buffer }
            }

            /// Wraps a buffer after the format's checks (see `check_len`).
            pub fn new_checked(buffer: T) -> Result<Packet<T>, Error> {
                let packet = Self::new_unchecked(buffer);
                $( packet.$check()?; )+
                Ok(packet)
            }

            /// The buffer, given back.
            pub fn into_inner(self) -> T {
                self.buffer
            }
        }
    };
}
