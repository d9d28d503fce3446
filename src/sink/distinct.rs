//! Counting distinct trace ids in bounded memory: exactly up to a cap, then
//! approximately with a HyperLogLog sketch (64 KiB, a standard error of 0.4 %), so a long run
//! with millions of traces does not keep every id.

use std::collections::HashSet;

/// Ids counted exactly (about 2 MB with the set's overhead) before the sketch takes over.
pub const DISTINCT_EXACT: usize = 100_000;

/// 2^16 registers: a standard error of 1.04 / sqrt(65536) ≈ 0.4 %.
const PRECISION: u32 = 16;
const REGISTERS: usize = 1 << PRECISION;

/// Distinct 16-byte ids seen.
#[derive(Debug)]
pub(super) enum DistinctIds {
    Exact(HashSet<[u8; 16]>),
    Sketch(Box<[u8; REGISTERS]>),
}

impl Default for DistinctIds {
    fn default() -> Self {
        DistinctIds::Exact(HashSet::new())
    }
}

/// A 64-bit hash of an id: ids may be chosen by the sender (sequential, say),
/// so they are mixed (splitmix64's finaliser) rather than used as they are.
fn hash(id: &[u8; 16]) -> u64 {
    let mix = |mut z: u64| {
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let (a, b) = id.split_at(8);
    let a = u64::from_le_bytes(a.try_into().unwrap_or_default());
    let b = u64::from_le_bytes(b.try_into().unwrap_or_default());
    mix(a ^ mix(b.wrapping_add(0x9e37_79b9_7f4a_7c15)))
}

fn add_to_sketch(registers: &mut [u8; REGISTERS], id: &[u8; 16]) {
    let h = hash(id);
    let index = (h >> (64 - PRECISION)) as usize;
    // The position of the first 1 bit in the remaining 50 bits.
    let rank = ((h << PRECISION) | (1 << (PRECISION - 1))).leading_zeros() as u8 + 1;
    registers[index] = registers[index].max(rank);
}

impl DistinctIds {
    /// Notes one id.
    pub(super) fn insert(&mut self, id: [u8; 16]) {
        match self {
            DistinctIds::Exact(set) => {
                set.insert(id);
                if set.len() > DISTINCT_EXACT {
                    let mut registers = Box::new([0u8; REGISTERS]);
                    for id in set.iter() {
                        add_to_sketch(&mut registers, id);
                    }
                    *self = DistinctIds::Sketch(registers);
                }
            }
            DistinctIds::Sketch(registers) => add_to_sketch(registers, &id),
        }
    }

    /// How many distinct ids, and whether that is an estimate.
    pub(super) fn count(&self) -> (u64, bool) {
        match self {
            DistinctIds::Exact(set) => (set.len() as u64, false),
            DistinctIds::Sketch(registers) => (estimate(registers), true),
        }
    }
}

/// The HyperLogLog estimate; linear counting (from the share of empty
/// registers) up to 3.5 registers per id, where the raw estimate is still
/// biased upwards by a percent or two and linear counting is within about 0.6 %.
fn estimate(registers: &[u8; REGISTERS]) -> u64 {
    let m = REGISTERS as f64;
    let zeros = registers.iter().filter(|&&r| r == 0).count();
    if zeros > 0 {
        let linear = m * (m / zeros as f64).ln();
        if linear <= 3.5 * m {
            return linear.round() as u64;
        }
    }
    let alpha = 0.7213 / (1.0 + 1.079 / m);
    let sum: f64 = registers.iter().map(|&r| (-f64::from(r)).exp2()).sum();
    (alpha * m * m / sum).round() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(i: u64) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[8..].copy_from_slice(&i.to_be_bytes());
        b
    }

    #[test]
    fn exact_below_the_cap_then_within_one_percent() {
        let mut d = DistinctIds::default();
        for i in 0..1000 {
            d.insert(id(i));
            d.insert(id(i));
        }
        assert_eq!(d.count(), (1000, false));
        // Sequential ids, the sketch's worst friend if they were not mixed.
        let n = 400_000u64;
        for i in 0..n {
            d.insert(id(i));
        }
        let (count, estimated) = d.count();
        assert!(estimated);
        let err = (count as f64 - n as f64).abs() / n as f64;
        assert!(err < 0.01, "{count} for {n}: {err}");
        // Repeats do not move it.
        for i in 0..n {
            d.insert(id(i));
        }
        assert_eq!(d.count().0, count);
    }
}
