//! The synthetic panel calibrated to the study (DESIGN.md section 1): 278
//! prefecture-level cities observed 2011-2020, with a digital-economy index,
//! industrial agglomeration (overall, secondary, tertiary), log carbon
//! intensity, six controls, city and year effects and errors correlated
//! within city. It is the embedded default and what `medsim generate` writes.
//!
//! # Data-generating process (the true parameters)
//!
//! For city i in year s = 0..T-1, with a city development factor `dev_i`:
//!
//! * `dei = 1 + 0.6 dev_i + (0.18 + g_i) s + 2 ln_gdp's shock + u_dei`: a
//!   common trend, each city's own pace of digitalisation `g_i` (normal, sd
//!   `DEI_GROWTH_SD` a year) and a shock `u_dei` that is AR(1) with
//!   `DEI_RHO` = 0.9 (sd `DEI_SHOCK_SD`), so the index is as persistent
//!   within a city as real indices are: on the default panel, its
//!   regression on its own lag with city means removed has slope 0.95
//!   (`tests/synthetic.rs`). A lagged treatment then carries most of the
//!   current one, and the lagged-treatment check supports the finding.
//! * `agglom_sec = a_sec_i dei + Z_AGGLOM iv_agglom + controls + city/year
//!   terms + e_sec`, and `agglom_ter` likewise with `a_ter_i`; `agglom =
//!   (agglom_sec + agglom_ter) / 2`, so `iv_agglom` moves agglom by
//!   `Z_AGGLOM` per unit.
//! * `log_ci = mu_i + lambda_s + C_PRIME dei + B_COMPONENT (agglom_sec + agglom_ter)
//!   + controls' gamma + e_y`, so the coefficient on `agglom` is
//!   `B_AGGLOM = 2 B_COMPONENT` and the model with `agglom` alone is exact.
//! * `a_sec_i = A_SEC m_i`, `a_ter_i = A_TER m_i`, where the heterogeneity
//!   multiplier `m_i` is the product of a size factor (`SIZE_LARGE` or
//!   `SIZE_SMALL_MEDIUM`) and a region factor (`REGION_EAST`, `REGION_CENTRAL`,
//!   `REGION_WEST`): digitalisation raises agglomeration, and so masks part of
//!   its carbon reduction, most in small-medium and western cities.
//! * Every other error and control shock is AR(1) within the city with
//!   coefficient `RHO`, so observations of a city are correlated after the
//!   fixed effects.
//! * The instrument `iv_post1984 = p_i s + e_z`, as the study's: a city's
//!   historical exposure `p_i` (post offices in 1984, standard normal)
//!   times the national trend (the year index s), plus i.i.d. noise `e_z`
//!   (sd `Z_NOISE`, from a second random stream). Exposure sets the city's
//!   pace, `g_i = DEI_GROWTH_SD (Z_SHARE p_i + sqrt(1 - Z_SHARE^2) v_i)`
//!   (p_i and v_i from a third stream), and enters no other equation: the
//!   instrument moves dei by `DEI_GROWTH_SD Z_SHARE` per unit and is
//!   excluded.
//! * The instrument of agglomeration `iv_agglom` (i.i.d. standard normal,
//!   from a fourth random stream; say a city-year's exposure to a
//!   regional industrial-park programme) enters both agglomeration
//!   equations with `Z_AGGLOM` and no other: relevant for agglom and
//!   excluded from the outcome, it identifies b when agglomeration is
//!   instrumented.
//!
//! * Optionally (`threshold_effect`, default 0), a threshold: where agglom
//!   exceeds `threshold_at`, log_ci gains `threshold_effect dei`, so dei's
//!   direct effect is `C_PRIME + threshold_effect` there (the example of
//!   `medsim threshold`, configs/threshold.toml).
//!
//! With the average multiplier near 1, the indirect effect is about
//! 0.2 x 0.029 = 0.0058, the total effect about -0.097 + 0.006 = -0.091, and
//! the indirect effect offsets about 6 % of the direct one.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use rand_distr::StandardNormal;

use crate::data::table::Table;

/// Direct effect of the digital-economy index on log carbon intensity.
pub const C_PRIME: f64 = -0.097;

/// Memory per generated row, as text and as numbers, generously: what
/// refuses a panel that cannot fit before it is made.
pub const BYTES_PER_ROW: f64 = 1024.0;

/// Refuse a panel of `cities` x `years` that this machine cannot hold;
/// `key` names the setting.
pub fn check_size(key: &str, cities: usize, years: usize) -> crate::error::Result<()> {
    crate::resources::check_memory(
        key,
        &format!("a synthetic panel of {cities} cities x {years} years"),
        cities as f64 * years as f64 * BYTES_PER_ROW,
    )
}
/// Effect of each agglomeration component on log carbon intensity.
pub const B_COMPONENT: f64 = 0.0145;
/// Effect of the overall agglomeration index on log carbon intensity.
pub const B_AGGLOM: f64 = 2.0 * B_COMPONENT;
/// Baseline effect of the digital economy on secondary agglomeration.
pub const A_SEC: f64 = 0.114;
/// Baseline effect of the digital economy on tertiary agglomeration.
pub const A_TER: f64 = 0.266;
/// Heterogeneity multipliers of the a paths.
pub const SIZE_LARGE: f64 = 0.6;
pub const SIZE_SMALL_MEDIUM: f64 = 1.2;
pub const REGION_EAST: f64 = 0.7;
pub const REGION_CENTRAL: f64 = 1.0;
pub const REGION_WEST: f64 = 1.45;
/// Within-city AR(1) coefficient of every shock but dei's own.
pub const RHO: f64 = 0.5;
/// Within-city AR(1) coefficient and SD of dei's own shock, and the SD of
/// each city's pace of digitalisation (its own trend, per year).
pub const DEI_RHO: f64 = 0.9;
pub const DEI_SHOCK_SD: f64 = 0.3;
pub const DEI_GROWTH_SD: f64 = 0.08;
/// Effect of the agglomeration instrument on each component (so on agglom).
pub const Z_AGGLOM: f64 = 0.15;
/// Share of a city's pace of digitalisation its historical exposure (the
/// instrument's) sets, and the sd of the instrument's own noise.
pub const Z_SHARE: f64 = 0.8;
pub const Z_NOISE: f64 = 0.3;

/// The six controls, in column order.
pub const CONTROLS: [&str; 6] = [
    "ln_gdp",
    "industry",
    "fdi",
    "urban",
    "gov",
    "ln_pop_density",
];
/// Effect of each control on log carbon intensity.
const GAMMA_Y: [f64; 6] = [-0.3, 0.01, -0.01, -0.002, 0.003, 0.1];

/// Regions: name, multiplier of the a paths, shift of the development
/// factor, first province number, share of cities, share of large cities.
const REGIONS: [(&str, f64, f64, usize); 3] = [
    ("east", REGION_EAST, 0.8, 0),
    ("central", REGION_CENTRAL, 0.0, 10),
    ("west", REGION_WEST, -0.6, 20),
];
const REGION_SHARE: [f64; 3] = [0.36, 0.36, 0.28];
const LARGE_SHARE: [f64; 3] = [0.45, 0.30, 0.15];

/// Region index and size class of every city: the counts are fixed by the
/// shares (so the average heterogeneity multiplier does not vary with the
/// seed), the order is shuffled.
fn city_types(cities: usize, rng: &mut ChaCha20Rng) -> Vec<(usize, bool)> {
    let mut types = Vec::with_capacity(cities);
    let mut assigned = 0;
    for r in 0..3 {
        let n_r = if r == 2 {
            cities - assigned
        } else {
            (REGION_SHARE[r] * cities as f64).round() as usize
        };
        let n_r = n_r.min(cities - assigned);
        assigned += n_r;
        let n_large = (LARGE_SHARE[r] * n_r as f64).round() as usize;
        types.extend((0..n_r).map(|k| (r, k < n_large)));
    }
    types.shuffle(rng);
    types
}

/// Size of the generated panel, its seed and its true parameters (the
/// defaults are the study's calibration, the constants above). A config's
/// `[data] synthetic = { ... }` table, each key defaulting.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyntheticParams {
    pub cities: usize,
    pub years: usize,
    pub first_year: i32,
    pub seed: u64,
    /// Baseline effect of dei on secondary agglomeration (`A_SEC`).
    pub a_sec: f64,
    /// Baseline effect of dei on tertiary agglomeration (`A_TER`).
    pub a_ter: f64,
    /// Effect of the overall agglomeration index on log carbon intensity
    /// (`B_AGGLOM`; each component has half of it).
    pub b: f64,
    /// Direct effect of dei on log carbon intensity (`C_PRIME`).
    pub c_prime: f64,
    /// Within-city AR(1) coefficient of every shock but dei's own (`RHO`), in [0, 1).
    pub rho: f64,
    /// Strength of the heterogeneity of the a paths: a city's multiplier is
    /// (region factor x size factor)^heterogeneity; 1 is the study's, 0
    /// makes every city alike.
    pub heterogeneity: f64,
    /// A threshold in dei's effect on log carbon intensity: where the
    /// city-year's agglom exceeds `threshold_at`, dei's direct effect is
    /// `c_prime + threshold_effect` (0, the default, leaves the panel
    /// unchanged; configs/threshold.toml sets -0.05 at 2.5, about agglom's
    /// median on the default panel).
    pub threshold_effect: f64,
    pub threshold_at: f64,
}

impl Default for SyntheticParams {
    fn default() -> Self {
        SyntheticParams {
            cities: 278,
            years: 10,
            first_year: 2011,
            seed: 1,
            a_sec: A_SEC,
            a_ter: A_TER,
            b: B_AGGLOM,
            c_prime: C_PRIME,
            rho: RHO,
            heterogeneity: 1.0,
            threshold_effect: 0.0,
            threshold_at: 2.5,
        }
    }
}

/// Column names of the generated table.
pub fn headers() -> Vec<String> {
    let mut h: Vec<String> = [
        "city",
        "year",
        "province",
        "region",
        "size",
        "dei",
        "agglom",
        "agglom_sec",
        "agglom_ter",
        "log_ci",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    h.extend(CONTROLS.iter().map(|s| s.to_string()));
    h.push("iv_post1984".into());
    h.push("iv_agglom".into());
    h
}

/// Stationary AR(1) path of length `t` with standard deviation `sd` and
/// coefficient `rho`.
fn ar1(rng: &mut ChaCha20Rng, t: usize, sd: f64, rho: f64) -> Vec<f64> {
    let mut e = Vec::with_capacity(t);
    let innovation = sd * (1.0 - rho * rho).sqrt();
    let mut prev = sd * rng.sample::<f64, _>(StandardNormal);
    e.push(prev);
    for _ in 1..t {
        prev = rho * prev + innovation * rng.sample::<f64, _>(StandardNormal);
        e.push(prev);
    }
    e
}

fn fmt(v: f64) -> String {
    format!("{v:.6}")
}

/// Generate the panel as a table of text cells (six decimals), the same
/// cells whether it is written to CSV or used in memory.
pub fn generate(params: SyntheticParams) -> Table {
    let mut rng = ChaCha20Rng::seed_from_u64(params.seed);
    let mut rng_z = ChaCha20Rng::seed_from_u64(params.seed);
    rng_z.set_stream(1);
    let mut rng_g = ChaCha20Rng::seed_from_u64(params.seed);
    rng_g.set_stream(2);
    let mut rng_m = ChaCha20Rng::seed_from_u64(params.seed);
    rng_m.set_stream(3);
    let t_count = params.years;
    let width = params.cities.to_string().len().max(3);
    let year_effect: Vec<f64> = (0..t_count)
        .map(|s| -0.04 * s as f64 + 0.02 * rng.sample::<f64, _>(StandardNormal))
        .collect();
    let mut rows = Vec::with_capacity(params.cities * t_count);
    for (i, &(r, large)) in city_types(params.cities, &mut rng).iter().enumerate() {
        let (region, region_mult, region_shift, province_base) = REGIONS[r];
        let province = format!("P{:02}", province_base + rng.random_range(0..10) + 1);
        let (size, size_mult) = if large {
            ("large", SIZE_LARGE)
        } else {
            ("small-medium", SIZE_SMALL_MEDIUM)
        };
        let dev =
            rng.sample::<f64, _>(StandardNormal) + region_shift + if large { 0.7 } else { 0.0 };
        let m = region_mult * size_mult;
        let m = if params.heterogeneity == 1.0 {
            m
        } else {
            m.powf(params.heterogeneity)
        };
        let (a_sec, a_ter) = (params.a_sec * m, params.a_ter * m);
        let mu_y = 0.5 - 0.3 * dev + 0.4 * rng.sample::<f64, _>(StandardNormal);
        let mu_sec = 0.3 * rng.sample::<f64, _>(StandardNormal);
        let mu_ter = 0.3 * rng.sample::<f64, _>(StandardNormal);

        let shocks: Vec<Vec<f64>> = [0.05, 1.5, 0.5, 1.2, 1.5, 0.03]
            .iter()
            .map(|&sd| ar1(&mut rng, t_count, sd, params.rho))
            .collect();
        let u_dei = ar1(&mut rng, t_count, DEI_SHOCK_SD, DEI_RHO);
        let exposure = rng_g.sample::<f64, _>(StandardNormal);
        let pace = DEI_GROWTH_SD
            * (Z_SHARE * exposure
                + (1.0 - Z_SHARE * Z_SHARE).sqrt() * rng_g.sample::<f64, _>(StandardNormal));
        let e_sec = ar1(&mut rng, t_count, 0.3, params.rho);
        let e_ter = ar1(&mut rng, t_count, 0.3, params.rho);
        let e_y = ar1(&mut rng, t_count, 0.015, params.rho);

        for s in 0..t_count {
            let sf = s as f64;
            let controls = [
                10.5 + 0.5 * dev + 0.06 * sf + shocks[0][s],
                45.0 - 3.0 * dev - 0.5 * sf + shocks[1][s],
                2.0 + 0.8 * dev + shocks[2][s],
                50.0 + 8.0 * dev + sf + shocks[3][s],
                18.0 - 2.0 * dev + shocks[4][s],
                6.0 + 0.5 * dev + 0.01 * sf + shocks[5][s],
            ];
            let dei = 1.0 + 0.6 * dev + (0.18 + pace) * sf + 2.0 * shocks[0][s] + u_dei[s];
            let z_agglom = rng_m.sample::<f64, _>(StandardNormal);
            let sec = 1.0
                + 0.3 * dev
                + mu_sec
                + 0.01 * sf
                + a_sec * dei
                + Z_AGGLOM * z_agglom
                + 0.02 * controls[1]
                + 0.05 * controls[0]
                + e_sec[s];
            let ter = 0.8
                + 0.4 * dev
                + mu_ter
                + 0.02 * sf
                + a_ter * dei
                + Z_AGGLOM * z_agglom
                + 0.01 * controls[3]
                + e_ter[s];
            let agglom = (sec + ter) / 2.0;
            let mut log_ci = mu_y
                + year_effect[s]
                + params.c_prime * dei
                + params.b / 2.0 * (sec + ter)
                + GAMMA_Y
                    .iter()
                    .zip(&controls)
                    .map(|(g, c)| g * c)
                    .sum::<f64>()
                + e_y[s];
            if params.threshold_effect != 0.0 && agglom > params.threshold_at {
                log_ci += params.threshold_effect * dei;
            }
            let mut row = vec![
                format!("C{:0width$}", i + 1),
                (params.first_year + s as i32).to_string(),
                province.clone(),
                region.to_string(),
                size.to_string(),
                fmt(dei),
                fmt(agglom),
                fmt(sec),
                fmt(ter),
                fmt(log_ci),
            ];
            row.extend(controls.iter().map(|&c| fmt(c)));
            let z = exposure * sf + Z_NOISE * rng_z.sample::<f64, _>(StandardNormal);
            row.push(fmt(z));
            row.push(fmt(z_agglom));
            rows.push(row);
        }
    }
    Table::new("<synthetic panel>", headers(), rows)
}
