//! Newtypes for secret bytes: zeroized on drop, never printed, compared by nobody.
//!
//! Every secret in this crate (DH shared secrets, PRF outputs, SKEYID and what is derived from
//! it, KEYMAT) is one of these, so a secret cannot be passed where another is meant and no
//! `Debug` output or log line shows one. They have no `PartialEq`: a secret that must be compared
//! is compared in constant time by the caller (tests compare the exposed bytes).

/// Declares a secret byte-string newtype with `expose`, `len`, `is_empty`, a redacting `Debug`
/// and zeroize-on-drop. `$ctor` is the visibility of its `from_bytes` constructor.
macro_rules! secret_bytes {
    ($(#[$doc:meta])* $name:ident, $ctor:vis) => {
        $(#[$doc])*
        #[derive(Clone, zeroize::Zeroize, zeroize::ZeroizeOnDrop)]
        pub struct $name(Vec<u8>);

        impl $name {
            /// Wraps the bytes (moved, so no copy is left behind).
            #[allow(dead_code)]
            $ctor fn from_bytes(bytes: Vec<u8>) -> Self {
                Self(bytes)
            }

            /// The secret bytes. Handle with care: for the provider, the key schedule and the
            /// key exporter.
            pub fn expose(&self) -> &[u8] {
                &self.0
            }

            /// Length in bytes.
            pub fn len(&self) -> usize {
                self.0.len()
            }

            /// True when empty.
            pub fn is_empty(&self) -> bool {
                self.0.is_empty()
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, concat!(stringify!($name), "(<{} bytes redacted>)"), self.0.len())
            }
        }
    };
}
