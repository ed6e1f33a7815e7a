//! Untrusted state bytes applied to a baseline: never a panic; whatever
//! applies is a well-formed snapshot that the encoder can reach again
//! (re-encoding base -> result and applying gives the same result).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tickforge_protocol::delta;
use tickforge_protocol::ids::Tick;
use tickforge_protocol::testutil::{self, Rng};

fuzz_target!(|data: &[u8]| {
    // First byte: baseline size (0 = no baseline) and tick gap; the rest is the blob.
    let Some((&head, blob)) = data.split_first() else { return };
    let schema = testutil::schema();
    let n = usize::from(head & 0x1f);
    let gap = u64::from(head >> 5) + 1;
    let base = testutil::snapshot(&mut Rng::new(u64::from(head)), Tick(10), n);
    let base = (n > 0).then_some(&base);
    let tick = Tick(10 + gap);

    if let Ok(s) = delta::bin::apply(&schema, 30, base, tick, blob) {
        assert!(s.is_well_formed());
        let mut again = Vec::new();
        delta::bin::encode(&schema, 30, base, &s, &mut again);
        assert_eq!(delta::bin::apply(&schema, 30, base, tick, &again), Ok(s));
    }
    if let Ok(d) = delta::json::read(&schema, blob) {
        if let Ok(s) = delta::apply(base, &d, tick) {
            assert!(s.is_well_formed());
            assert_eq!(delta::apply(base, &delta::diff(&schema, base, &s), tick), Ok(s));
        }
    }
});
