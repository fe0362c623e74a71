//! Tables before they are a model's sample: CSV files read and written
//! ([`table`]), Stata, Parquet and Excel files read ([`files`]), the
//! study-calibrated synthetic panel ([`synthetic`]), and
//! the robustness transformations of a raw table ([`robustness`]).

pub mod files;
pub mod robustness;
pub mod synthetic;
pub mod table;
