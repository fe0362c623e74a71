//! What the integration tests, benches, fuzz targets and the `medsim`
//! binary reach below the chosen API, at the paths of the layers they come
//! from (`medsim::internals::model::design::Design`). Hidden from the
//! documentation and free to change: callers use the crate root's API.

pub mod cli {
    pub use crate::cli::{Cli, dispatch, mention_flags, stdout_failed};
}

pub mod data {
    pub mod files {
        pub use crate::data::files::{Format, format_of, read_table};
    }
    pub mod synthetic {
        pub use crate::data::synthetic::{
            B_AGGLOM, C_PRIME, CONTROLS, SyntheticParams, Z_AGGLOM, generate, headers,
        };
    }
    pub mod table {
        pub use crate::data::table::{Table, parse_csv, read_csv, write_csv};
    }
}

#[cfg(feature = "gpu")]
pub mod gpu {
    pub use crate::gpu::{GpuContext, PhiloxCase, decode, is_hardware, shared_context};
    pub mod engine {
        pub use crate::gpu::engine::{GpuEngine, GpuOptions};
    }
    pub mod roofline {
        pub use crate::gpu::roofline::Stage;
    }
    pub mod stack {
        pub use crate::gpu::stack::{Set, replicates};
    }
    pub mod threshold {
        pub use crate::gpu::threshold::GpuThreshold;
    }
    pub mod wild {
        pub use crate::gpu::wild::p_value;
    }
}

pub mod math {
    pub mod linalg {
        pub use crate::math::linalg::packed_len;
    }
    pub mod rng {
        pub use crate::math::rng::{STREAM_LABELS, WordStream, philox4x32_10};
    }
    pub mod stats {
        pub use crate::math::stats::t_quantile;
    }
}

pub mod model {
    pub mod threshold {
        pub use crate::model::threshold::{
            Grid, Prepared, RegimeFit, Search, Step, ThresholdFit, ThresholdSpec, estimate,
            lr_critical, regimes,
        };
    }
    pub mod confounding {
        pub use crate::model::confounding::{
            Coefficient, ConfoundingSpec, ConfoundingSummary, analyse, replicate_orders,
        };
    }
    pub mod design {
        pub use crate::model::design::Design;
    }
    pub mod effect {
        pub use crate::model::effect::EffectKey;
    }
    pub mod estimate {
        pub use crate::model::estimate::{SystemFit, fit_system};
    }
    pub mod mediation {
        pub use crate::model::mediation::{Analysis, Effect, analyse, equations};
    }
    pub mod panel {
        pub use crate::model::panel::Panel;
    }
    pub mod replicate {
        pub use crate::model::replicate::{Solver, StatLayout, acme};
    }
    pub mod spec {
        pub use crate::model::spec::{
            FixedEffects, InferenceSpec, Interaction, ModelSpec, Moderation, ModeratorValues,
            default_spec,
        };
    }
}

pub mod output {
    pub mod manifest {
        pub use crate::output::manifest::Manifest;
    }
    pub mod report {
        pub use crate::output::report::render;
    }
    pub mod scale {
        pub use crate::output::scale::shards;
    }
}

pub mod provenance {
    pub use crate::provenance::sha256_hex;
}

pub mod resample {
    pub mod threshold {
        pub use crate::resample::threshold::{
            CpuThreshold, FTest, LinearForm, Null, ThresholdEngine, ThresholdScheme, f_test,
            f_tests,
        };
    }
    pub mod checkpoint {
        pub use crate::resample::checkpoint::{HEADER_FILE, Header, Store};
    }
    pub mod contrast {
        pub use crate::resample::contrast::ContrastEngine;
    }
    pub mod engine {
        pub use crate::resample::engine::{Backend, CpuEngine, Engine, Precision, Precomputed};
    }
    pub mod intervals {
        pub use crate::resample::intervals::{Draws, Method, Order, jackknife_acceleration};
    }
    pub mod label_test {
        pub use crate::resample::label_test::LabelPermutation;
    }
    pub mod permutation {
        pub use crate::resample::permutation::{Exchange, PermutationEngine};
    }
    pub mod scheme {
        pub use crate::resample::scheme::{Scheme, WeightPlan, WildWeights};
    }
    pub mod spec {
        pub use crate::resample::spec::{BackendChoice, ResampleSpec, SharedWeights};
    }
    pub mod wild {
        pub use crate::resample::wild::RestrictedTest;
    }
}

pub mod study {
    pub mod config {
        pub use crate::study::config::{Origin, paper, parse};
    }
    pub mod resampling {
        pub use crate::study::resampling::{resample, resample_with};
    }
    pub mod run {
        pub use crate::study::run::{DataSource, RunPlan, execute};
    }
    pub mod simulate {
        pub use crate::study::simulate::{Cell, CellResult, Dgp, Study, iid_table, run, stacks};
    }
    pub mod stages {
        pub use crate::study::stages::{Problem, markdown, profile};
    }
    pub mod summary {
        pub use crate::study::summary::Summary;
    }
    pub mod sweep {
        pub use crate::study::sweep::points;
    }
}
