// The floating-point type of the numeric stages: f32 by default; the engine
// swaps this file for `alias Real = f64;` on adapters with SHADER_F64.
alias Real = f32;
