//! A pickle reader for the protocol-2 pickles `torch.save` writes, with no Python.
//!
//! Nothing is executed: globals and calls are recorded as data ([`Object::Call`]) and given
//! meaning by the torch layer, so unknown classes read as opaque values instead of failing.

mod machine;
mod value;

pub use machine::{unpickle, PickleError, Unpickled};
pub use value::{Call, Heap, Object, ObjectId, Value};
