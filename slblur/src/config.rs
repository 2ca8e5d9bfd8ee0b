//! The function's configuration: every `SLBLUR_*` environment variable, its default and its
//! parser (the server's own come from [`faas_server::Settings`]).

use std::path::PathBuf;

use faas_server::Variable;
use faas_server::settings::{Env, SettingError, Settings, positive};

use crate::detect::Precision;
use crate::detect::ops::Kernels;
use crate::options::{
    DEFAULT_MAX_INFERENCE_PIXELS, FrameOptions, MaskShape, Mode, parse_inference_pixels,
    parse_inference_width, parse_mask_scale, parse_quality, parse_threshold,
};

/// Everything the function can be told at start-up: the server's settings (`SLBLUR_ADDR`,
/// `_MAX_BODY_BYTES`, `_WORKERS`, `_QUEUE`, `_TIMEOUT`, `_GRACE`, `_LOCK_FILE`; see
/// [`faas_server::Settings`]) and the face pipeline's. `Default` gives the documented defaults
/// except the lock file, which only [`Config::from_env`] turns on (library users opt in).
#[derive(Debug, Clone)]
pub struct Config {
    pub server: Settings,
    /// CenterFace ONNX file (`SLBLUR_MODEL`).
    pub model: PathBuf,
    /// Largest decoded image accepted, in pixels (`SLBLUR_MAX_PIXELS`).
    pub max_pixels: u64,
    /// Frames wider than this are downscaled for detection; 0 = full resolution (`SLBLUR_INFERENCE_WIDTH`).
    pub inference_width: u32,
    /// Largest network input, in pixels: larger ones are downscaled, both sides alike
    /// (`SLBLUR_MAX_INFERENCE_PIXELS`).
    pub max_inference_pixels: u64,
    /// Detection score threshold (`SLBLUR_THRESHOLD`).
    pub threshold: f32,
    /// Default anonymization (`SLBLUR_MODE`).
    pub mode: Mode,
    /// Default mask shape (`SLBLUR_MASK`).
    pub mask: MaskShape,
    /// Default mask scale around each face box (`SLBLUR_MASK_SCALE`).
    pub mask_scale: f32,
    /// JPEG output quality (`SLBLUR_JPEG_QUALITY`).
    pub jpeg_quality: u8,
    /// Threads one inference may use (`SLBLUR_ML_THREADS`).
    pub ml_threads: usize,
    /// The vectors of slblur's own inference kernels (`SLBLUR_KERNELS`): the fastest this CPU
    /// has, measured at start, unless told, e.g. AVX2 on an AVX-512 CPU to measure what
    /// AVX2-only CPUs get.
    pub kernels: KernelChoice,
    /// The arithmetic of the 1×1 convolutions and the first layer (`SLBLUR_PRECISION`): `fp32`,
    /// or `int8` with scales calibrated at start.
    pub precision: Precision,
}

/// The function's name: the prefix of its variables and metrics.
pub const NAME: &str = "slblur";

impl Default for Config {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Config {
            server: Settings {
                instance: format!("{NAME}-{}", std::process::id()),
                ..Settings::default()
            },
            model: default_model(),
            max_pixels: 8192 * 4320,
            inference_width: 640,
            max_inference_pixels: DEFAULT_MAX_INFERENCE_PIXELS,
            threshold: 0.2,
            mode: Mode::Blur,
            mask: MaskShape::Ellipse,
            mask_scale: 1.3,
            jpeg_quality: 90,
            ml_threads: cores,
            kernels: KernelChoice::Fastest,
            precision: Precision::Fp32,
        }
    }
}

/// The model when `SLBLUR_MODEL` is unset: `assets/centerface.onnx` beside the executable, where
/// the template's build puts it (the image then runs with no environment), else the repository's
/// `models/centerface.onnx` (scripts/fetch-model).
fn default_model() -> PathBuf {
    let beside_binary = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join("assets/centerface.onnx")));
    beside_binary
        .filter(|path| path.is_file())
        .unwrap_or_else(|| PathBuf::from("models/centerface.onnx"))
}

/// The function's own variables (the server's are [`faas_server::settings::SERVER_VARIABLES`]):
/// the one list `--help` prints and the docs' table is checked against.
pub mod var {
    use faas_server::Variable;

    macro_rules! variables {
        ($($id:ident = $default:literal, $what:literal;)+) => {
            $(pub const $id: Variable = Variable {
                name: stringify!($id),
                default: $default,
                what: $what,
            };)+
            /// Every function variable, in `--help` order.
            pub const ALL: &[Variable] = &[$($id),+];
        };
    }

    variables! {
        MODEL = "assets/centerface.onnx beside the binary if present, else models/centerface.onnx",
            "CenterFace ONNX file";
        ML_THREADS = "all cores", "threads per inference";
        KERNELS = "auto", "auto (the fastest, measured at start) | avx512 | avx2 | portable";
        PRECISION = "fp32", "fp32 | int8: arithmetic of the 1x1 convolutions and the first layer";
        INFERENCE_WIDTH = "640", "detection width, 0 = full resolution";
        MAX_INFERENCE_PIXELS = "942080 = 1280x736", "largest network input area";
        THRESHOLD = "0.2", "detection score threshold";
        MODE = "blur", "blur | mosaic | solid | none";
        MASK = "ellipse", "ellipse | box";
        MASK_SCALE = "1.3", "mask size around each face box";
        JPEG_QUALITY = "90", "JPEG output quality";
        MAX_PIXELS = "35389440", "largest decoded image";
    }
}

/// A variable that is set but cannot be used; it names the variable.
pub type ConfigError = SettingError;

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::from_lookup(&|name| std::env::var(name).ok())
    }

    /// Reads variables through `lookup`, so tests need not touch the process environment.
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let d = Config::default();
        let env = Env::new(lookup);
        let named = |v: Variable| v.for_function(NAME);
        Ok(Config {
            server: Settings::from_lookup(NAME, lookup)?,
            model: env.get(&named(var::MODEL), |s| Ok(PathBuf::from(s)), d.model)?,
            max_pixels: env.get(&named(var::MAX_PIXELS), positive, d.max_pixels)?,
            inference_width: env.get(
                &named(var::INFERENCE_WIDTH),
                parse_inference_width,
                d.inference_width,
            )?,
            max_inference_pixels: env.get(
                &named(var::MAX_INFERENCE_PIXELS),
                parse_inference_pixels,
                d.max_inference_pixels,
            )?,
            threshold: env.get(&named(var::THRESHOLD), parse_threshold, d.threshold)?,
            mode: env.get(&named(var::MODE), str::parse, d.mode)?,
            mask: env.get(&named(var::MASK), str::parse, d.mask)?,
            mask_scale: env.get(&named(var::MASK_SCALE), parse_mask_scale, d.mask_scale)?,
            jpeg_quality: env.get(&named(var::JPEG_QUALITY), parse_quality, d.jpeg_quality)?,
            ml_threads: env.get(&named(var::ML_THREADS), positive, d.ml_threads)?,
            kernels: env.get(&named(var::KERNELS), str::parse, d.kernels)?,
            precision: env.get(&named(var::PRECISION), str::parse, d.precision)?,
        })
    }
}

/// What `SLBLUR_KERNELS` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelChoice {
    /// `auto`: the detector runs the network once on each vector width this CPU has and keeps
    /// the fastest ([`crate::detect::Detector::configured`]).
    Fastest,
    /// The kernels named (`avx512`, `avx2` or `portable`).
    Named(Kernels),
}

impl KernelChoice {
    /// The kernels to start from: the widest this CPU has until measured, or the ones named.
    pub fn kernels(self) -> Kernels {
        match self {
            KernelChoice::Fastest => Kernels::best(),
            KernelChoice::Named(kernels) => kernels,
        }
    }
}

impl std::str::FromStr for KernelChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<KernelChoice, String> {
        match s {
            "auto" => Ok(KernelChoice::Fastest),
            name => name.parse().map(KernelChoice::Named),
        }
    }
}

impl Config {
    /// The per-request options a request starts from: the server's defaults.
    pub fn frame_options(&self) -> FrameOptions {
        FrameOptions {
            mode: self.mode,
            mask: self.mask,
            mask_scale: self.mask_scale,
            threshold: self.threshold,
            inference_width: self.inference_width,
            max_inference_pixels: self.max_inference_pixels,
            format: None,
            quality: self.jpeg_quality,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::time::Duration;

    fn from(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(&|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_when_nothing_is_set() {
        let c = from(&[]).expect("defaults");
        assert_eq!(c.server.addr.to_string(), "127.0.0.1:8080");
        assert_eq!(c.model, PathBuf::from("models/centerface.onnx"));
        assert_eq!(c.inference_width, 640);
        assert_eq!(c.server.lock_file, Some(std::env::temp_dir().join(".lock")));
    }

    #[test]
    fn reads_every_variable() {
        let c = from(&[
            ("SLBLUR_ADDR", "0.0.0.0:8082"),
            ("SLBLUR_MODEL", "/m.onnx"),
            ("SLBLUR_MODE", "mosaic"),
            ("SLBLUR_MASK", "box"),
            ("SLBLUR_MASK_SCALE", "1.5"),
            ("SLBLUR_THRESHOLD", "0.4"),
            ("SLBLUR_INFERENCE_WIDTH", "0"),
            ("SLBLUR_MAX_INFERENCE_PIXELS", "2073600"),
            ("SLBLUR_TIMEOUT", "0.5"),
            ("SLBLUR_QUEUE", "0"),
            ("SLBLUR_LOCK_FILE", ""),
            ("HOSTNAME", "pod-1"),
        ])
        .expect("valid");
        assert_eq!(c.server.addr.port(), 8082);
        assert_eq!(c.mode, Mode::Mosaic);
        assert_eq!(c.mask, MaskShape::Box);
        assert_eq!(c.inference_width, 0);
        assert_eq!(c.max_inference_pixels, 1920 * 1080);
        assert_eq!(c.server.request_timeout, Duration::from_millis(500));
        assert_eq!(c.server.queue, 0);
        assert_eq!(c.server.lock_file, None);
        assert_eq!(c.server.instance, "pod-1");
    }

    #[test]
    fn rejects_bad_values_naming_the_variable() {
        for (var, value) in [
            ("SLBLUR_ADDR", "8080"),
            ("SLBLUR_WORKERS", "0"),
            ("SLBLUR_THRESHOLD", "1.5"),
            ("SLBLUR_MODE", "pixelate"),
            ("SLBLUR_INFERENCE_WIDTH", "16"),
            ("SLBLUR_MAX_INFERENCE_PIXELS", "1000"),
            ("SLBLUR_TIMEOUT", "-1"),
            ("SLBLUR_JPEG_QUALITY", "101"),
            ("SLBLUR_KERNELS", "sse2"),
            ("SLBLUR_PRECISION", "fp16"),
        ] {
            let err = from(&[(var, value)]).expect_err(var);
            assert_eq!(err.var, var);
            assert!(err.to_string().contains(value), "{err}");
        }
    }

    #[test]
    fn kernels_are_measured_unless_told_and_a_choice_this_cpu_lacks_is_refused() {
        let defaults = from(&[]).expect("defaults");
        assert_eq!(defaults.kernels, KernelChoice::Fastest);
        assert_eq!(defaults.kernels.kernels(), Kernels::best());
        let auto = from(&[("SLBLUR_KERNELS", "auto")]).expect("auto");
        assert_eq!(auto.kernels, KernelChoice::Fastest);
        let portable = from(&[("SLBLUR_KERNELS", "portable")]).expect("portable");
        assert_eq!(
            portable.kernels.kernels().isa(),
            crate::detect::ops::Isa::Portable
        );
        for name in ["avx512", "avx2"] {
            match name.parse::<Kernels>() {
                Ok(kernels) => {
                    let config = from(&[("SLBLUR_KERNELS", name)]).expect(name);
                    assert_eq!(
                        config.kernels,
                        KernelChoice::Named(kernels),
                        "{name} is a choice, not measured"
                    );
                }
                Err(_) => {
                    let err = from(&[("SLBLUR_KERNELS", name)]).expect_err(name);
                    assert_eq!(err.var, "SLBLUR_KERNELS");
                    assert!(err.to_string().contains("this CPU has no"), "{err}");
                }
            }
        }
    }

    #[test]
    fn value_parsers_accept_their_ranges() {
        assert_eq!(parse_inference_width("32"), Ok(32));
        assert!(parse_inference_width("31").is_err());
        assert_eq!(parse_quality("1"), Ok(1));
        assert!(parse_quality("0").is_err());
        assert_eq!(parse_mask_scale("3"), Ok(3.0));
        assert!(parse_mask_scale("0.9").is_err());
        assert!(parse_threshold("0").is_err());
    }
}
