pub mod allocator;
pub mod args;
pub mod report;
pub mod run;
