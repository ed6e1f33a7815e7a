//! The server's hot path reads ~100k binary inputs a second per core:
//! decoding a binary `input` message and then its data with the room's
//! input schema must not touch the heap. A counting global allocator
//! proves it (allocations are counted per thread, so the test harness's
//! other threads do not disturb the count).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use tickforge_protocol::codec::{self, Format, DEFAULT_MAX_MESSAGE};
use tickforge_protocol::ids::{InputSeq, Tick};
use tickforge_protocol::input::{InputSchema, InputValues, MAX_INPUT_FIELDS};
use tickforge_protocol::message::{ClientMsg, InputData};
use tickforge_protocol::schema::FieldType;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded to the system allocator unchanged; the
// counter is a const-initialized thread local, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn allocations_in(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

/// Encodes an input message of `schema` with `values` (allocating: not measured).
fn frame(schema: &InputSchema, values: &InputValues) -> Vec<u8> {
    let data = schema.encode(Format::Bin, values).unwrap();
    let msg = ClientMsg::Input { seq: InputSeq(70_000), ack: Some(Tick(1 << 40)), data };
    let mut out = Vec::new();
    codec::encode_client(Format::Bin, &msg, &mut out).unwrap();
    out
}

#[test]
fn a_binary_input_decodes_without_allocating() {
    let arena = InputData::schema();
    let names: Vec<String> = (0..MAX_INPUT_FIELDS).map(|i| format!("f{i}")).collect();
    let widest = InputSchema::new(names.iter().map(|n| (n.as_str(), FieldType::I32)));
    let cases = [
        (arena.clone(), InputValues::from(InputData { move_x: -127, move_y: 90, buttons: InputData::FIRE })),
        (widest.clone(), InputValues::from_slice(&[i32::MIN; MAX_INPUT_FIELDS]).unwrap()),
    ];
    for (schema, values) in cases {
        let bytes = frame(&schema, &values);
        let mut decoded = None;
        let n = allocations_in(|| {
            let Ok(ClientMsg::Input { data, .. }) = codec::decode_client(Format::Bin, &bytes, DEFAULT_MAX_MESSAGE)
            else {
                return;
            };
            decoded = schema.decode(&data).ok();
        });
        assert_eq!(decoded, Some(values), "the input decodes");
        assert_eq!(n, 0, "{} heap allocations decoding a {}-byte input", n, bytes.len());
    }
    // The counter works: a refused input names its field, on the heap.
    let short = frame(arena, &InputValues::from(InputData::default()));
    let n = allocations_in(|| {
        if let Ok(ClientMsg::Input { data, .. }) =
            codec::decode_client(Format::Bin, &short[..short.len() - 1], DEFAULT_MAX_MESSAGE)
        {
            assert!(arena.decode(&data).is_err());
        }
    });
    assert!(n > 0, "the allocation counter counts");
}
