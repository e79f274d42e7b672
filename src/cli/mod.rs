pub mod allocator;
pub mod args;
pub mod run;
