pub mod allocator;
pub mod args;
pub mod nora;
pub mod report;
pub mod run;
