//! Fuzzes the recording metadata parser (RFC 7865 and draft) and the state
//! it feeds: no panic, and applying the same document twice changes nothing
//! the second time.
#![no_main]

use callrec_siprec::metadata::{Metadata, MetadataState};
use callrec_siprec::roles::RoleResolver;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(md) = Metadata::parse(data) else {
        return;
    };
    let mut state = MetadataState::new();
    state.apply(&md);
    assert!(state.apply(&md).is_empty(), "second apply reported changes");
    let labels: Vec<String> = state
        .streams()
        .iter()
        .filter_map(|s| s.label.clone())
        .collect();
    let map = RoleResolver::new(vec![]).resolve(&labels, Some(&state));
    assert_eq!(map.entries.len(), labels.len());
});
