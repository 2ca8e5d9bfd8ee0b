//! The image decoders behind their limits: any bytes either decode into a frame within the
//! pixel limit whose buffer matches its size, or fail with an error; never a panic or a bomb.

#![no_main]

use libfuzzer_sys::fuzz_target;

const MAX_PIXELS: u64 = 1 << 20;

fuzz_target!(|data: &[u8]| {
    if let Ok((frame, _kind)) = slblur::codec::decode(data, MAX_PIXELS) {
        let pixels = u64::from(frame.width) * u64::from(frame.height);
        assert!(
            pixels <= MAX_PIXELS,
            "{}x{} passed the limit",
            frame.width,
            frame.height
        );
        assert_eq!(
            frame.rgb.len() as u64,
            pixels * 3,
            "buffer and size disagree"
        );
    }
});
