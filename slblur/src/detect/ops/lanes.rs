//! Sixteen `f32` lanes in registers, for the kernels of [`super::depthwise`] and
//! [`super::bottleneck`]: one 512-bit vector, two of 256 bits, or sixteen scalars. Each kernel is
//! compiled once per implementation, inside a function with that implementation's target
//! features, and chosen at run time for the CPU it runs on, so one binary runs on any x86-64.

/// Points per vector step.
pub const LANES: usize = 16;

/// [`LANES`] floats in registers. The methods are only called from functions compiled with the
/// implementation's target features, on a CPU that has them.
pub trait Lanes: Copy {
    /// Whether these vectors have 32 registers (AVX-512's) rather than 16: kernels that keep
    /// many values in registers take wider steps with them.
    const MANY_REGISTERS: bool;
    fn splat(value: f32) -> Self;
    /// `values[..LANES]`.
    fn load(values: &[f32]) -> Self;
    fn add(self, other: Self) -> Self;
    /// `self + a * b`, rounded twice, as tract's depthwise kernel rounds it.
    fn add_product(self, a: Self, b: Self) -> Self;
    /// `self + a * b`, rounded once, as tract's matrix kernels round it.
    fn fused_add_product(self, a: Self, b: Self) -> Self;
    fn relu(self) -> Self;
    /// Into `out[..LANES]`.
    fn store(self, out: &mut [f32]);
}

/// Asks for `values` to be brought into the L1 cache, one request per 64-byte line.
#[inline(always)]
pub fn prefetch(values: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    for line in values.chunks(16) {
        // SAFETY: a prefetch only hints; the address is in `values`.
        unsafe {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            _mm_prefetch::<_MM_HINT_T0>(line.as_ptr().cast());
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = values;
}

#[derive(Clone, Copy)]
pub struct Portable([f32; LANES]);

impl Portable {
    #[inline(always)]
    fn zip(mut self, other: Self, f: impl Fn(f32, f32) -> f32) -> Self {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a = f(*a, b);
        }
        self
    }
}

impl Lanes for Portable {
    const MANY_REGISTERS: bool = false;
    #[inline(always)]
    fn splat(value: f32) -> Self {
        Portable([value; LANES])
    }
    #[inline(always)]
    fn load(values: &[f32]) -> Self {
        let mut lanes = [0.0; LANES];
        lanes.copy_from_slice(&values[..LANES]);
        Portable(lanes)
    }
    #[inline(always)]
    fn add(self, other: Self) -> Self {
        self.zip(other, |a, b| a + b)
    }
    #[inline(always)]
    fn add_product(self, a: Self, b: Self) -> Self {
        self.add(a.zip(b, |a, b| a * b))
    }
    #[inline(always)]
    fn fused_add_product(mut self, a: Self, b: Self) -> Self {
        for ((sum, a), b) in self.0.iter_mut().zip(a.0).zip(b.0) {
            *sum = a.mul_add(b, *sum);
        }
        self
    }
    #[inline(always)]
    fn relu(self) -> Self {
        self.zip(Portable::splat(0.0), f32::max)
    }
    #[inline(always)]
    fn store(self, out: &mut [f32]) {
        out[..LANES].copy_from_slice(&self.0);
    }
}

#[cfg(target_arch = "x86_64")]
pub use x86::{Avx2, Avx512};

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{LANES, Lanes};

    #[derive(Clone, Copy)]
    pub struct Avx512(__m512);

    // SAFETY (both impls): the slices are checked to hold `LANES` values before each unaligned
    // load or store, and the methods run inside functions compiled for the target features
    // (AVX-512F; AVX2 and FMA), which the dispatchers choose only on CPUs that have them.
    impl Lanes for Avx512 {
        const MANY_REGISTERS: bool = true;
        #[inline(always)]
        fn splat(value: f32) -> Self {
            Avx512(unsafe { _mm512_set1_ps(value) })
        }
        #[inline(always)]
        fn load(values: &[f32]) -> Self {
            let values = &values[..LANES];
            Avx512(unsafe { _mm512_loadu_ps(values.as_ptr()) })
        }
        #[inline(always)]
        fn add(self, other: Self) -> Self {
            Avx512(unsafe { _mm512_add_ps(self.0, other.0) })
        }
        #[inline(always)]
        fn add_product(self, a: Self, b: Self) -> Self {
            Avx512(unsafe { _mm512_add_ps(self.0, _mm512_mul_ps(a.0, b.0)) })
        }
        #[inline(always)]
        fn fused_add_product(self, a: Self, b: Self) -> Self {
            Avx512(unsafe { _mm512_fmadd_ps(a.0, b.0, self.0) })
        }
        #[inline(always)]
        fn relu(self) -> Self {
            Avx512(unsafe { _mm512_max_ps(self.0, _mm512_setzero_ps()) })
        }
        #[inline(always)]
        fn store(self, out: &mut [f32]) {
            let out = &mut out[..LANES];
            unsafe { _mm512_storeu_ps(out.as_mut_ptr(), self.0) }
        }
    }

    #[derive(Clone, Copy)]
    pub struct Avx2(__m256, __m256);

    impl Avx2 {
        #[inline(always)]
        fn each(self, other: Self, f: impl Fn(__m256, __m256) -> __m256) -> Self {
            Avx2(f(self.0, other.0), f(self.1, other.1))
        }
    }

    impl Lanes for Avx2 {
        const MANY_REGISTERS: bool = false;
        #[inline(always)]
        fn splat(value: f32) -> Self {
            let v = unsafe { _mm256_set1_ps(value) };
            Avx2(v, v)
        }
        #[inline(always)]
        fn load(values: &[f32]) -> Self {
            let values = &values[..LANES];
            let p = values.as_ptr();
            unsafe { Avx2(_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(8))) }
        }
        #[inline(always)]
        fn add(self, other: Self) -> Self {
            self.each(other, |a, b| unsafe { _mm256_add_ps(a, b) })
        }
        #[inline(always)]
        fn add_product(self, a: Self, b: Self) -> Self {
            self.add(a.each(b, |a, b| unsafe { _mm256_mul_ps(a, b) }))
        }
        #[inline(always)]
        fn fused_add_product(self, a: Self, b: Self) -> Self {
            unsafe {
                Avx2(
                    _mm256_fmadd_ps(a.0, b.0, self.0),
                    _mm256_fmadd_ps(a.1, b.1, self.1),
                )
            }
        }
        #[inline(always)]
        fn relu(self) -> Self {
            self.each(Avx2::splat(0.0), |a, b| unsafe { _mm256_max_ps(a, b) })
        }
        #[inline(always)]
        fn store(self, out: &mut [f32]) {
            let out = &mut out[..LANES];
            let p = out.as_mut_ptr();
            unsafe {
                _mm256_storeu_ps(p, self.0);
                _mm256_storeu_ps(p.add(8), self.1);
            }
        }
    }
}

/// The vector implementations of slblur's kernels, widest first (which is also their order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    Avx512,
    Avx2,
    Portable,
}

impl Isa {
    /// Every implementation this CPU has, widest first; the last is always `Portable`.
    pub fn available() -> Vec<Isa> {
        let mut isas = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                isas.push(Isa::Avx512);
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                isas.push(Isa::Avx2);
            }
        }
        isas.push(Isa::Portable);
        isas
    }

    /// The widest implementation this CPU has.
    pub fn best() -> Isa {
        Isa::available()[0]
    }

    /// The name `SLBLUR_KERNELS` and the start-up log use.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Avx512 => "avx512",
            Isa::Avx2 => "avx2",
            Isa::Portable => "portable",
        }
    }

    /// The vector width in bits, `None` for portable code (sixteen scalars, which the compiler
    /// vectorises as it can for the baseline target).
    pub fn bits(self) -> Option<u32> {
        match self {
            Isa::Avx512 => Some(512),
            Isa::Avx2 => Some(256),
            Isa::Portable => None,
        }
    }
}

impl std::fmt::Display for Isa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Which implementation slblur's own kernels use: one this CPU has, checked when it is made, so
/// the kernels' `unsafe` dispatch only ever meets instructions the CPU runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Kernels(Isa);

impl Kernels {
    /// The widest this CPU has (`SLBLUR_KERNELS=auto`).
    pub fn best() -> Kernels {
        Kernels(Isa::best())
    }

    /// Every implementation this CPU has, widest first.
    pub fn available() -> Vec<Kernels> {
        Isa::available().into_iter().map(Kernels).collect()
    }

    pub fn isa(self) -> Isa {
        self.0
    }

    /// The vectors of the ops that sum as tract's matrix kernels do, with fused multiply-adds:
    /// none with the portable kernels, which a CPU without FMA gets and where tract's kernels
    /// do not fuse, so those ops leave the work to tract.
    pub fn fused(self) -> Option<Isa> {
        (self.0 != Isa::Portable).then_some(self.0)
    }
}

impl Default for Kernels {
    fn default() -> Self {
        Kernels::best()
    }
}

impl std::fmt::Display for Kernels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::str::FromStr for Kernels {
    type Err = String;

    /// `avx512`, `avx2` or `portable`; a name this CPU cannot run is refused, naming what it
    /// can. (`auto`, which `SLBLUR_KERNELS` also takes, is a [`crate::config::KernelChoice`].)
    fn from_str(s: &str) -> Result<Kernels, String> {
        let wanted = match s {
            "avx512" => Isa::Avx512,
            "avx2" => Isa::Avx2,
            "portable" => Isa::Portable,
            _ => return Err("expected auto, avx512, avx2 or portable".into()),
        };
        let available = Isa::available();
        if available.contains(&wanted) {
            return Ok(Kernels(wanted));
        }
        let needs = match wanted {
            Isa::Avx512 => "AVX-512F",
            _ => "AVX2 and FMA",
        };
        let names: Vec<&str> = available.iter().map(|isa| isa.name()).collect();
        Err(format!(
            "this CPU has no {needs}; it can run {}",
            names.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_parse_what_this_cpu_has_and_refuse_the_rest() {
        assert!(
            "auto".parse::<Kernels>().is_err(),
            "a choice of the config's"
        );
        assert_eq!(
            "portable".parse::<Kernels>().map(Kernels::isa),
            Ok(Isa::Portable)
        );
        let available = Isa::available();
        for isa in [Isa::Avx512, Isa::Avx2] {
            let parsed = isa.name().parse::<Kernels>();
            if available.contains(&isa) {
                assert_eq!(parsed.map(Kernels::isa), Ok(isa));
            } else {
                let err = parsed.expect_err(isa.name());
                assert!(err.contains("this CPU has no"), "{err}");
            }
        }
        for bad in ["", "AVX2", "sse2", "avx-512"] {
            let err = bad.parse::<Kernels>().expect_err(bad);
            assert!(err.contains("auto, avx512, avx2 or portable"), "{err}");
        }
    }
}
