pub mod allocator;
pub mod args;
mod classify;
mod info;
pub mod nora;
pub mod report;
pub mod run;
