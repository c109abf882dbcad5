//! Sets of ports and SPIs as a binding holds them: nothing, one contiguous
//! range (the wire's "number N, one field" form) or a list.

use serde::{Deserialize, Serialize};

use crate::Spi;

/// The ports of a binding.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PortSet {
    /// No port: an RSA-IP binding (the host may use every port of its
    /// address) or an RSIPSEC binding whose ports were "don't need".
    None,
    /// `count` contiguous ports from `first` (`count >= 1`).
    Range {
        /// The first port.
        first: u16,
        /// How many ports.
        count: u16,
    },
    /// Separate ports, ascending, no duplicates.
    List(Vec<u16>),
}

/// The SPIs of a binding (on its address).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SpiSet {
    /// No SPI: an RSA-IP or RSAP-IP binding.
    None,
    /// `count` contiguous SPIs from `first` (`count >= 1`).
    Range {
        /// The first SPI.
        first: Spi,
        /// How many SPIs.
        count: u32,
    },
    /// Separate SPIs, ascending, no duplicates.
    List(Vec<Spi>),
}

/// Maximal runs of consecutive values, in ascending order, from an ascending
/// list.
fn runs_of(sorted: impl Iterator<Item = u32>) -> Vec<(u32, u32)> {
    let mut runs: Vec<(u32, u32)> = Vec::new();
    for v in sorted {
        match runs.last_mut() {
            Some((_, last)) if u64::from(*last) + 1 == u64::from(v) => *last = v,
            _ => runs.push((v, v)),
        }
    }
    runs
}

/// Checks a list: non-empty, no duplicates. Returns it sorted.
fn sorted_unique<T: Ord + Copy>(list: &[T]) -> Result<Vec<T>, &'static str> {
    if list.is_empty() {
        return Err("empty list");
    }
    let mut v = list.to_vec();
    v.sort_unstable();
    if v.windows(2).any(|w| w[0] == w[1]) {
        return Err("duplicate value in list");
    }
    Ok(v)
}

impl PortSet {
    /// How many ports.
    pub fn len(&self) -> u32 {
        match self {
            PortSet::None => 0,
            PortSet::Range { count, .. } => u32::from(*count),
            PortSet::List(l) => u32::try_from(l.len()).unwrap_or(u32::MAX),
        }
    }

    /// Whether there is no port.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `port` is in the set.
    pub fn contains(&self, port: u16) -> bool {
        match self {
            PortSet::None => false,
            PortSet::Range { first, count } => {
                port >= *first && u32::from(port) < u32::from(*first) + u32::from(*count)
            }
            PortSet::List(l) => l.binary_search(&port).is_ok(),
        }
    }

    /// The ports, ascending.
    pub fn iter(&self) -> impl Iterator<Item = u16> + '_ {
        let (range, list): (std::ops::Range<u32>, &[u16]) = match self {
            PortSet::None => (0..0, &[]),
            PortSet::Range { first, count } => (
                u32::from(*first)..u32::from(*first) + u32::from(*count),
                &[],
            ),
            PortSet::List(l) => (0..0, l),
        };
        range
            .filter_map(|p| u16::try_from(p).ok())
            .chain(list.iter().copied())
    }

    /// Maximal runs of consecutive ports, inclusive, ascending.
    pub(crate) fn runs(&self) -> Vec<(u16, u16)> {
        runs_of(self.iter().map(u32::from))
            .into_iter()
            .filter_map(|(a, b)| Some((u16::try_from(a).ok()?, u16::try_from(b).ok()?)))
            .collect()
    }

    /// Checks the shape (non-zero count, no overflow past 65535, sorted list
    /// without duplicates).
    pub(crate) fn check(&self) -> Result<(), &'static str> {
        match self {
            PortSet::None => Ok(()),
            PortSet::Range { first, count } => port_range(*first, *count).map(|_| ()),
            PortSet::List(l) => {
                if sorted_unique(l)? == *l {
                    Ok(())
                } else {
                    Err("port list not in ascending order")
                }
            }
        }
    }
}

/// The inclusive bounds of `count` ports from `first`.
pub(crate) fn port_range(first: u16, count: u16) -> Result<(u16, u16), &'static str> {
    if count == 0 {
        return Err("zero port count");
    }
    let last = u32::from(first) + u32::from(count) - 1;
    u16::try_from(last)
        .map(|last| (first, last))
        .map_err(|_| "port range past 65535")
}

/// The inclusive bounds of `count` SPIs from `first`.
pub(crate) fn spi_range(first: u32, count: u32) -> Result<(u32, u32), &'static str> {
    if count == 0 {
        return Err("zero SPI count");
    }
    let last = u64::from(first) + u64::from(count) - 1;
    u32::try_from(last)
        .map(|last| (first, last))
        .map_err(|_| "SPI range past 2^32-1")
}

/// A request list checked and sorted.
pub(crate) fn checked_list<T: Ord + Copy>(list: &[T]) -> Result<Vec<T>, &'static str> {
    sorted_unique(list)
}

impl SpiSet {
    /// How many SPIs.
    pub fn len(&self) -> u32 {
        match self {
            SpiSet::None => 0,
            SpiSet::Range { count, .. } => *count,
            SpiSet::List(l) => u32::try_from(l.len()).unwrap_or(u32::MAX),
        }
    }

    /// Whether there is no SPI.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `spi` is in the set.
    pub fn contains(&self, spi: Spi) -> bool {
        match self {
            SpiSet::None => false,
            SpiSet::Range { first, count } => {
                spi >= *first && u64::from(spi.0) < u64::from(first.0) + u64::from(*count)
            }
            SpiSet::List(l) => l.binary_search(&spi).is_ok(),
        }
    }

    /// The SPIs, ascending.
    pub fn iter(&self) -> impl Iterator<Item = Spi> + '_ {
        let (range, list): (std::ops::Range<u64>, &[Spi]) = match self {
            SpiSet::None => (0..0, &[]),
            SpiSet::Range { first, count } => (
                u64::from(first.0)..u64::from(first.0) + u64::from(*count),
                &[],
            ),
            SpiSet::List(l) => (0..0, l),
        };
        range
            .filter_map(|s| u32::try_from(s).ok().map(Spi))
            .chain(list.iter().copied())
    }

    /// Maximal runs of consecutive SPIs, inclusive, ascending.
    pub(crate) fn runs(&self) -> Vec<(u32, u32)> {
        match self {
            SpiSet::None => Vec::new(),
            SpiSet::Range { first, count } => spi_range(first.0, *count)
                .map(|r| vec![r])
                .unwrap_or_default(),
            SpiSet::List(l) => runs_of(l.iter().map(|s| s.0)),
        }
    }

    /// Checks the shape, as [`PortSet::check`].
    pub(crate) fn check(&self) -> Result<(), &'static str> {
        match self {
            SpiSet::None => Ok(()),
            SpiSet::Range { first, count } => spi_range(first.0, *count).map(|_| ()),
            SpiSet::List(l) => {
                if sorted_unique(l)? == *l {
                    Ok(())
                } else {
                    Err("SPI list not in ascending order")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_sets() {
        let r = PortSet::Range {
            first: 65534,
            count: 2,
        };
        assert_eq!(r.iter().collect::<Vec<_>>(), vec![65534, 65535]);
        assert!(r.contains(65535) && !r.contains(65533));
        assert_eq!(r.check(), Ok(()));
        assert!(
            PortSet::Range {
                first: 65535,
                count: 2
            }
            .check()
            .is_err()
        );
        assert!(PortSet::Range { first: 1, count: 0 }.check().is_err());
        let l = PortSet::List(vec![3, 4, 5, 9]);
        assert_eq!(l.runs(), vec![(3, 5), (9, 9)]);
        assert_eq!(l.len(), 4);
        assert!(PortSet::List(vec![4, 3]).check().is_err());
        assert!(PortSet::List(vec![3, 3]).check().is_err());
        assert!(PortSet::List(vec![]).check().is_err());
        assert!(PortSet::None.is_empty());
        assert_eq!(std::mem::size_of::<PortSet>(), 24);
    }

    #[test]
    fn spi_sets() {
        let r = SpiSet::Range {
            first: Spi(u32::MAX - 1),
            count: 2,
        };
        assert_eq!(r.runs(), vec![(u32::MAX - 1, u32::MAX)]);
        assert_eq!(r.iter().count(), 2);
        assert!(r.contains(Spi(u32::MAX)));
        assert!(
            SpiSet::Range {
                first: Spi(u32::MAX),
                count: 2
            }
            .check()
            .is_err()
        );
        let l = SpiSet::List(vec![Spi(300), Spi(301), Spi(400)]);
        assert_eq!(l.runs(), vec![(300, 301), (400, 400)]);
        assert!(l.contains(Spi(400)) && !l.contains(Spi(302)));
        assert_eq!(std::mem::size_of::<SpiSet>(), 24);
    }
}
