pub mod allocator;
pub mod args;
mod classify;
pub mod nora;
pub mod report;
pub mod run;
