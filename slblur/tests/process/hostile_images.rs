//! Valid but unusual images and metadata bombs, made here byte by byte: a PNG whose iCCP chunk
//! inflates to 1 GiB, CMYK (Adobe) JPEGs, 12-bit JPEGs, progressive JPEGs with hundreds of
//! scans, and every EXIF orientation. Each is answered precisely and at a bounded cost.

use crate::support;

use crate::support::{Function, TestServer, listen_url, peak_rss_mb, png_chunk};
use image::metadata::Orientation;
use slblur::codec::{self, Frame};
use slblur::options::ImageKind;

fn group() -> Frame {
    codec::decode(&support::fixture("group_1280x720.jpg"), u64::MAX)
        .expect("fixture")
        .0
}

/// Deflate bits, least significant first; Huffman codes go most significant bit first.
#[derive(Default)]
struct Bits {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

impl Bits {
    fn put(&mut self, value: u32, count: u32) {
        self.acc |= (value as u64) << self.n;
        self.n += count;
        while self.n >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.n -= 8;
        }
    }

    fn code(&mut self, code: u32, len: u32) {
        let reversed = code.reverse_bits() >> (32 - len);
        self.put(reversed, len);
    }

    fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            self.out.push(self.acc as u8);
        }
        self.out
    }
}

/// A zlib stream of `258·k + 1` zero bytes in about `k/4` bytes: one dynamic-Huffman block
/// whose codes are literal 0 = `10`, end = `11`, length 258 = `0`, distance 1 = `0`.
fn zlib_zeros(k: usize) -> Vec<u8> {
    let mut b = Bits::default();
    b.put(1, 1); // final block
    b.put(2, 2); // dynamic Huffman
    b.put(286 - 257, 5);
    b.put(2 - 1, 5);
    b.put(18 - 4, 4);
    // Code-length code lengths in deflate's order 16 17 18 0 8 7 9 6 10 5 11 4 12 3 13 2 14 1:
    // symbol 18 (runs of zeros) = `0`, 1 = `10`, 2 = `11`.
    for len in [0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 2] {
        b.put(len, 3);
    }
    let (two, one, zeros) = ((0b11, 2), (0b10, 2), (0b0, 1));
    b.code(two.0, two.1); // literal 0: length 2
    b.code(zeros.0, zeros.1);
    b.put(138 - 11, 7); // literals 1..=138 unused
    b.code(zeros.0, zeros.1);
    b.put(117 - 11, 7); // literals 139..=255 unused
    b.code(two.0, two.1); // 256 end of block: length 2
    b.code(zeros.0, zeros.1);
    b.put(28 - 11, 7); // lengths 257..=284 unused
    b.code(one.0, one.1); // 285 (length 258): length 1
    b.code(one.0, one.1); // distance 0 (1): length 1
    b.code(one.0, one.1); // distance 1 (2): length 1, completing the code
    b.code(0b10, 2); // a literal zero
    for _ in 0..k {
        b.code(0b0, 1); // length 258
        b.code(0b0, 1); // distance 1
    }
    b.code(0b11, 2); // end of block
    let mut out = vec![0x78, 0x01];
    out.extend(b.finish());
    let total = (258 * k + 1) as u64;
    let adler = ((total % 65521) << 16) | 1;
    out.extend_from_slice(&(adler as u32).to_be_bytes());
    out
}

/// A small PNG with an iCCP chunk that inflates to 1 GiB (about 1 MB on the wire).
fn iccp_bomb() -> Vec<u8> {
    let frame = Frame {
        width: 64,
        height: 64,
        rgb: vec![120; 64 * 64 * 3],
    };
    let png = codec::encode(&frame, ImageKind::Png, 90).expect("png");
    let mut profile = b"bomb\0\0".to_vec();
    profile.extend(zlib_zeros((1 << 30) / 258));
    let ihdr_end = 8 + 25;
    let mut out = png[..ihdr_end].to_vec();
    out.extend(png_chunk(b"iCCP", &profile));
    out.extend_from_slice(&png[ihdr_end..]);
    out
}

#[test]
fn the_zlib_writer_is_real_deflate() {
    let _machine = support::share_machine();
    // The image crate's own PNG decoder inflates it: an iCCP of 258·4 + 1 zeros is read back.
    let frame = Frame {
        width: 2,
        height: 2,
        rgb: vec![7; 12],
    };
    let png = codec::encode(&frame, ImageKind::Png, 90).expect("png");
    let mut profile = b"small\0\0".to_vec();
    profile.extend(zlib_zeros(4));
    let mut small = png[..33].to_vec();
    small.extend(png_chunk(b"iCCP", &profile));
    small.extend_from_slice(&png[33..]);
    let mut decoder =
        image::codecs::png::PngDecoder::new(std::io::Cursor::new(&small)).expect("png");
    let icc = image::ImageDecoder::icc_profile(&mut decoder).expect("read");
    assert_eq!(icc, Some(vec![0; 258 * 4 + 1]));
    assert!(iccp_bomb().len() < 1_200_000);
}

/// The bomb costs (almost) nothing: the profile is ignored past a small limit and the pixels
/// are answered. Before the limits were set first, the decoder inflated 512 MiB of it.
#[tokio::test(flavor = "multi_thread")]
async fn a_png_iccp_bomb_is_cheap() {
    let _machine = support::share_machine();
    let mut f = Function::spawn(&[("SLBLUR_WORKERS", "1")]);
    let url = listen_url(&f.wait_for("listening"));
    f.wait_for("ready");
    let before = peak_rss_mb(f.child.id());
    let r = reqwest::Client::new()
        .post(format!("{url}/"))
        .header("content-type", "image/png")
        .body(iccp_bomb())
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    let image = r.bytes().await.expect("body");
    assert_eq!(support::image_size(&image), (64, 64));
    let grown = peak_rss_mb(f.child.id()) - before;
    eprintln!("iCCP bomb: peak RSS grew by {grown:.0} MB");
    assert!(grown < 100.0, "peak RSS grew by {grown:.0} MB");
}

/// Error code of an answer that must fail.
async fn error_code(r: reqwest::Response) -> (u16, String) {
    let status = r.status().as_u16();
    let v: serde_json::Value = r.json().await.expect("JSON error");
    (
        status,
        v["error"]["code"].as_str().unwrap_or("").to_string(),
    )
}

/// Mean absolute difference of two same-sized frames.
fn mean_diff(a: &Frame, b: &Frame) -> f64 {
    assert_eq!((a.width, a.height), (b.width, b.height));
    let sum: u64 = a
        .rgb
        .iter()
        .zip(&b.rgb)
        .map(|(x, y)| x.abs_diff(*y) as u64)
        .sum();
    sum as f64 / a.rgb.len() as f64
}

/// An Adobe CMYK JPEG (what libjpeg writes from CMYK pixels: YCCK with an APP14 marker,
/// samples inverted) holding the group photo: no black, inverted C/M/Y = R/G/B.
fn cmyk_jpeg(frame: &Frame) -> Vec<u8> {
    let cmyk: Vec<u8> = frame
        .rgb
        .chunks_exact(3)
        .flat_map(|p| [p[0], p[1], p[2], 255])
        .collect();
    let image = turbojpeg::Image {
        pixels: cmyk.as_slice(),
        width: frame.width as usize,
        pitch: frame.width as usize * 4,
        height: frame.height as usize,
        format: turbojpeg::PixelFormat::CMYK,
    };
    let jpeg = turbojpeg::compress(image, 95, turbojpeg::Subsamp::None).expect("cmyk jpeg");
    let header = turbojpeg::read_header(&jpeg).expect("header");
    assert!(
        matches!(
            header.colorspace,
            turbojpeg::Colorspace::YCCK | turbojpeg::Colorspace::CMYK
        ),
        "{header:?}"
    );
    jpeg.to_vec()
}

#[tokio::test(flavor = "multi_thread")]
async fn cmyk_jpegs_are_decoded_and_anonymized() {
    let _machine = support::share_machine();
    let server = TestServer::start().await;
    let original = group();
    let jpeg = cmyk_jpeg(&original);
    let r = server
        .send("/?mode=none&format=png", "image/jpeg", jpeg.clone())
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-face-count"], "3");
    let back = codec::decode(&r.bytes().await.expect("body"), u64::MAX)
        .expect("png")
        .0;
    let diff = mean_diff(&back, &original);
    assert!(
        diff < 4.0,
        "colours survive the CMYK round trip: mean diff {diff:.1}"
    );
    let r = server.send("/", "image/jpeg", jpeg).await;
    assert_eq!(r.status(), 200);
    let blurred = r.bytes().await.expect("body");
    assert_eq!(support::confident_faces(&blurred), 0, "faces are blurred");
}

/// A baseline JPEG whose frame header is rewritten to claim 12-bit samples (SOF1, P = 12).
fn twelve_bit_jpeg() -> Vec<u8> {
    let mut jpeg = support::fixture("astronaut_640x360.jpg");
    let sof = jpeg
        .windows(2)
        .position(|w| w == [0xFF, 0xC0])
        .expect("a baseline frame header");
    jpeg[sof + 1] = 0xC1;
    jpeg[sof + 4] = 12;
    jpeg
}

/// A progressive JPEG whose last scan is repeated until there are 300 more scans.
fn many_scans_jpeg() -> Vec<u8> {
    let frame = Frame {
        width: 64,
        height: 64,
        rgb: (0..64 * 64 * 3).map(|i| (i % 251) as u8).collect(),
    };
    let image = turbojpeg::Image {
        pixels: frame.rgb.as_slice(),
        width: 64,
        pitch: 64 * 3,
        height: 64,
        format: turbojpeg::PixelFormat::RGB,
    };
    let mut compressor = turbojpeg::Compressor::new().expect("compressor");
    compressor.set_progressive(true).expect("progressive");
    let jpeg = compressor.compress_to_vec(image).expect("jpeg");
    let last = jpeg
        .windows(2)
        .rposition(|w| w == [0xFF, 0xDA])
        .expect("a scan");
    let end = jpeg.len() - 2;
    let mut out = jpeg[..end].to_vec();
    for _ in 0..300 {
        out.extend_from_slice(&jpeg[last..end]);
    }
    out.extend_from_slice(&[0xFF, 0xD9]);
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn unsupported_jpegs_get_their_own_code() {
    let _machine = support::share_machine();
    let server = TestServer::start().await;
    for (label, body) in [
        ("12-bit", twelve_bit_jpeg()),
        ("300 scans", many_scans_jpeg()),
    ] {
        let r = server.send("/", "image/jpeg", body).await;
        assert_eq!(
            error_code(r).await,
            (422, "unsupported_image".to_string()),
            "{label}"
        );
    }
}

/// A JPEG APP1 segment holding only an EXIF orientation tag (big-endian TIFF, one IFD entry).
fn exif_app1(orientation: u16) -> Vec<u8> {
    let mut tiff = b"MM\0\x2a".to_vec();
    tiff.extend_from_slice(&8u32.to_be_bytes());
    tiff.extend_from_slice(&1u16.to_be_bytes());
    tiff.extend_from_slice(&0x0112u16.to_be_bytes());
    tiff.extend_from_slice(&3u16.to_be_bytes());
    tiff.extend_from_slice(&1u32.to_be_bytes());
    tiff.extend_from_slice(&orientation.to_be_bytes());
    tiff.extend_from_slice(&[0, 0]);
    tiff.extend_from_slice(&0u32.to_be_bytes());
    let mut segment = vec![0xFF, 0xE1];
    segment.extend_from_slice(&((2 + 6 + tiff.len()) as u16).to_be_bytes());
    segment.extend_from_slice(b"Exif\0\0");
    segment.extend(tiff);
    segment
}

/// The group photo stored as a camera with EXIF orientation `n` stores it.
fn stored_with_orientation(upright: &Frame, n: u8) -> Vec<u8> {
    // Orientations 6 and 8 undo each other; the others undo themselves.
    let undo = match n {
        6 => 8,
        8 => 6,
        n => n,
    };
    let buffer = image::RgbImage::from_raw(upright.width, upright.height, upright.rgb.clone())
        .expect("buffer");
    let mut stored = image::DynamicImage::ImageRgb8(buffer);
    stored.apply_orientation(Orientation::from_exif(undo).expect("orientation"));
    let stored = stored.into_rgb8();
    let frame = Frame {
        width: stored.width(),
        height: stored.height(),
        rgb: stored.into_raw(),
    };
    let jpeg = codec::encode(&frame, ImageKind::Jpeg, 95).expect("jpeg");
    let mut out = jpeg[..2].to_vec();
    out.extend(exif_app1(n as u16));
    out.extend_from_slice(&jpeg[2..]);
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn exif_orientation_is_applied_and_the_answer_is_upright() {
    let _machine = support::share_machine();
    let server = TestServer::start().await;
    let upright = group();
    for n in 1..=8u8 {
        let jpeg = stored_with_orientation(&upright, n);
        let r = server
            .send("/?mode=none&format=png", "image/jpeg", jpeg)
            .await;
        assert_eq!(r.status(), 200, "orientation {n}");
        assert_eq!(
            r.headers()["x-face-count"],
            "3",
            "orientation {n}: faces found upright"
        );
        let back = codec::decode(&r.bytes().await.expect("body"), u64::MAX)
            .expect("png")
            .0;
        assert_eq!((back.width, back.height), (1280, 720), "orientation {n}");
        let diff = mean_diff(&back, &upright);
        assert!(
            diff < 4.0,
            "orientation {n}: mean diff {diff:.1} from the upright photo"
        );
    }
}
