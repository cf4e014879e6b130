//! v1 values to v2 values, following crun's documented conversions (crun(1),
//! section "CGROUP v2"). Docker's flags and the OCI runtime spec speak v1
//! (shares, memory+swap, blkio weight); a v2 host wants different files and
//! scales.

/// The CFS period Docker uses for `--cpus`: 100 ms, in microseconds.
pub const CPU_PERIOD_US: u64 = 100_000;

// ANCHOR: cpus_to_quota
/// `--cpus 1.5` as a CFS quota and period, in microseconds: the quota is
/// how much of each period the group may run, summed over all CPUs.
pub fn cpus_to_quota(cpus: f64) -> (u64, u64) {
    ((cpus * CPU_PERIOD_US as f64).round() as u64, CPU_PERIOD_US)
}
// ANCHOR_END: cpus_to_quota

// ANCHOR: shares_to_weight
/// v1 `cpu.shares` [2, 262144] to v2 `cpu.weight` [1, 10000], with crun's
/// formula; out-of-range shares act as the nearest end.
pub fn shares_to_weight(shares: u64) -> u64 {
    let shares = shares.clamp(2, 262_144);
    1 + ((shares - 2) * 9999) / 262_142
}
// ANCHOR_END: shares_to_weight

/// v1 `blkio.weight` [10, 1000] to v2 `io.weight` [1, 10000] (crun's linear map).
pub fn blkio_weight_to_io_weight(weight: u64) -> u64 {
    let weight = weight.clamp(10, 1000);
    1 + ((weight - 10) * 9999) / 990
}

/// Docker's `--memory-swap` is memory *plus* swap (v1's `memsw`); v2's
/// `memory.swap.max` is swap alone. `None` means unlimited.
pub fn swap_only(memory_plus_swap: u64, memory: u64) -> u64 {
    memory_plus_swap.saturating_sub(memory)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blkio_and_swap_conversions_follow_crun() {
        assert_eq!(blkio_weight_to_io_weight(10), 1);
        assert_eq!(blkio_weight_to_io_weight(1000), 10000);
        assert_eq!(blkio_weight_to_io_weight(500), 1 + (490 * 9999) / 990);
        assert_eq!(swap_only(300 << 20, 100 << 20), 200 << 20);
        assert_eq!(swap_only(100 << 20, 100 << 20), 0);
    }
}
