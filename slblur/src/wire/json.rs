//! JSON format: `{"image": "<base64>", ...options}` in; the image, faces, per-stage timings and
//! request facts out.

use std::borrow::Cow;
use std::fmt;

use faas_server::{Context, Problem, Reply};
use serde::de::{self, Error as _, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use slblur_protocol::boxes::{self, BoxPx, MAX_HINTS};
use slblur_protocol::json::{self, HINTS_FIELD, IMAGE_FIELD, JsonReply};

use crate::options::{FrameOptions, MAX_QUOTED_BYTES, OPTION_NAMES, OptionError, quote};
use crate::pipeline::Processed;

/// A JSON request's image (base64 text) and hints; its options went into the frame options.
pub struct JsonInput {
    pub image: Vec<u8>,
    pub hints: Vec<BoxPx>,
}

/// Splits a JSON request into the base64 image text, its hints and the options it sets. The
/// object is read field by field, never built as a tree: a value of the wrong type (say a 48 MB
/// array for `mode`) is refused at its first byte, and only the image text is copied.
pub fn parse_request(body: &[u8], options: &mut FrameOptions) -> Result<JsonInput, Problem> {
    let invalid = |message: String| Problem::bad_request("invalid_json", message);
    let mut refused = None;
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed = de
        .deserialize_map(RequestVisitor {
            refused: &mut refused,
        })
        .and_then(|request| de.end().map(|()| request));
    if let Some(e) = refused {
        return Err(e);
    }
    let request = parsed.map_err(|e| {
        if e.is_data() {
            invalid(e.to_string())
        } else {
            invalid(format!("the body is not valid JSON: {e}"))
        }
    })?;
    let image = request
        .image
        .ok_or_else(|| invalid("the \"image\" field (base64 JPEG or PNG) is missing".into()))?;
    options.apply_pairs(&request.options)?;
    Ok(JsonInput {
        image,
        hints: request.hints,
    })
}

/// A JSON request as read: the image text, the hints and each option as text.
struct Request {
    image: Option<Vec<u8>>,
    hints: Vec<BoxPx>,
    options: Vec<(String, String)>,
}

/// Reads the top-level object; an unknown name, a bad option value or bad hints are parked in
/// `refused` (an `invalid_option` or `invalid_hints`, not an `invalid_json`) and stop the parse.
struct RequestVisitor<'r> {
    refused: &'r mut Option<Problem>,
}

impl<'de> Visitor<'de> for RequestVisitor<'_> {
    type Value = Request;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object with an \"image\" field")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Request, A::Error> {
        let mut request = Request {
            image: None,
            hints: Vec::new(),
            options: Vec::new(),
        };
        while let Some(name) = map.next_key::<Cow<'de, str>>()? {
            if name == IMAGE_FIELD {
                let Text(image) = map
                    .next_value()
                    .map_err(|_| A::Error::custom("\"image\" must be a base64 string"))?;
                request.image = Some(image.into_owned().into_bytes());
            } else if name == HINTS_FIELD {
                match map.next_value::<Hints>() {
                    Ok(Hints(hints)) => request.hints = hints,
                    Err(e) => {
                        *self.refused = Some(super::invalid_hints(format!("\"hints\": {e}")));
                        return Err(e);
                    }
                }
            } else if OPTION_NAMES.contains(&&*name) {
                match map.next_value::<OptionText>() {
                    Ok(OptionText(Ok(value))) => request.options.push((name.into_owned(), value)),
                    Ok(OptionText(Err(reason))) => {
                        *self.refused = Some(OptionError::new(&name, reason).into());
                        return Err(A::Error::custom("invalid option"));
                    }
                    Err(e) => {
                        *self.refused = Some(
                            OptionError::new(&name, "expected a string or a number".to_string())
                                .into(),
                        );
                        return Err(e);
                    }
                }
            } else {
                *self.refused = Some(
                    OptionError::new(
                        &name,
                        format!(
                            "unknown option; known: image, hints, {}",
                            OPTION_NAMES.join(", ")
                        ),
                    )
                    .into(),
                );
                return Err(A::Error::custom("unknown field"));
            }
        }
        Ok(request)
    }
}

/// The `hints` list, read box by box: the 65th box, or any box that is not four numbers in
/// order, stops the read at once (a huge array is never held).
struct Hints(Vec<BoxPx>);

impl<'de> Deserialize<'de> for Hints {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_seq(HintsVisitor)
    }
}

struct HintsVisitor;

impl<'de> Visitor<'de> for HintsVisitor {
    type Value = Hints;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of [x1, y1, x2, y2] boxes")
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Hints, A::Error> {
        let mut hints = Vec::new();
        while let Some(b) = seq.next_element::<BoxPx>()? {
            if hints.len() == MAX_HINTS {
                return Err(A::Error::custom(format!("more than {MAX_HINTS} boxes")));
            }
            let b = boxes::check(b)
                .map_err(|why| A::Error::custom(format!("box {}: {why}", hints.len() + 1)))?;
            hints.push(b);
        }
        Ok(Hints(hints))
    }
}

/// A JSON string, borrowed from the body when it has no escapes.
struct Text<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Cow::<'de, str>::deserialize(d).map(Text)
    }
}

/// An option's value: a string or a number, as text. Anything else fails before it is read.
/// A value too long for any option is refused with its clipped quote, never copied whole.
struct OptionText(Result<String, String>);

impl<'de> Deserialize<'de> for OptionText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(OptionTextVisitor)
    }
}

struct OptionTextVisitor;

impl Visitor<'_> for OptionTextVisitor {
    type Value = OptionText;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string or a number")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<OptionText, E> {
        Ok(OptionText(if v.trim().len() > MAX_QUOTED_BYTES {
            Err(format!("the value is too long (got {})", quote(v)))
        } else {
            Ok(v.to_string())
        }))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<OptionText, E> {
        Ok(OptionText(Ok(v.to_string())))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<OptionText, E> {
        Ok(OptionText(Ok(v.to_string())))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<OptionText, E> {
        Ok(OptionText(Ok(v.to_string())))
    }
}

pub fn respond(p: Processed, context: &Context) -> Result<Reply, Problem> {
    let body = JsonReply {
        // The pipeline produced base64, which is ASCII.
        image: std::str::from_utf8(&p.image).unwrap_or_default().into(),
        format: p.kind,
        faces: p.faces,
        timings_ms: p.timings,
        input: p.input,
        inference: p.inference,
        cold: context.cold,
        instance: (&*context.instance).into(),
        request_id: (&*context.request_id).into(),
    };
    let bytes =
        serde_json::to_vec(&body).map_err(|e| Problem::internal("encode_failed", e.to_string()))?;
    Ok(Reply::new(json::CONTENT_TYPE, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::options::Mode;

    fn parse(body: &[u8]) -> Result<(Vec<u8>, FrameOptions), Problem> {
        let mut options = Config::default().frame_options();
        parse_request(body, &mut options).map(|request| (request.image, options))
    }

    #[test]
    fn fields_accept_numbers_and_strings() {
        let (image, o) =
            parse(br#"{"image":"aGk=","mode":"SOLID","mask_scale":1.6,"quality":"75"}"#)
                .expect("valid");
        assert_eq!(image, b"aGk=");
        assert_eq!(o.mode, Mode::Solid);
        assert_eq!(o.mask_scale, 1.6);
        assert_eq!(o.quality, 75);
    }

    #[test]
    fn each_refusal_has_its_code() {
        for (body, code) in [
            (&br#"{"image": "#[..], "invalid_json"),
            (br#"[1, 2]"#, "invalid_json"),
            (br#"{"mode": "blur"}"#, "invalid_json"),
            (br#"{"image": 5}"#, "invalid_json"),
            (br#"{"image": "aGk="} x"#, "invalid_json"),
            (
                br#"{"image": "aGk=", "mode": "pixelate"}"#,
                "invalid_option",
            ),
            (br#"{"image": "aGk=", "colour": "red"}"#, "invalid_option"),
            (br#"{"image": "aGk=", "threshold": [1]}"#, "invalid_option"),
            (br#"{"image": "aGk=", "mode": {"a": 1}}"#, "invalid_option"),
        ] {
            let label = String::from_utf8_lossy(body);
            let e = parse(body).expect_err(&label);
            assert_eq!(e.code, code, "{label}: {}", e.message);
        }
    }

    /// A 48 MB array for an option stops the parse at its first bracket: nothing is built,
    /// and the message quotes no more than a clipped name.
    #[test]
    fn a_huge_array_is_refused_without_reading_it() {
        let mut body = br#"{"mode":["#.to_vec();
        body.extend(std::iter::repeat_n(*b"1,", 24 << 20).flatten());
        body.extend_from_slice(br#"1],"image":"aGk="}"#);
        let e = parse(&body).expect_err("refused");
        assert_eq!(e.code, "invalid_option");
        assert!(
            e.message.contains("expected a string or a number"),
            "{}",
            e.message
        );
        let long_name = format!(r#"{{"{}":1,"image":"aGk="}}"#, "k".repeat(40 << 20));
        let e = parse(long_name.as_bytes()).expect_err("refused");
        assert!(e.message.len() < 300, "{} bytes", e.message.len());
        let long_value = format!(r#"{{"image":"aGk=","mode":"{}"}}"#, "v".repeat(40 << 20));
        let e = parse(long_value.as_bytes()).expect_err("refused");
        assert_eq!(e.code, "invalid_option");
        assert!(e.message.contains("(41943040 bytes)"), "{}", e.message);
        assert!(e.message.len() < 300, "{} bytes", e.message.len());
    }
}
