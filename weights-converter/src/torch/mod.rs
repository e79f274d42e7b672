//! Reading `torch.save` zip checkpoints without Python.

mod archive;
mod checkpoint;
mod rebuild;
mod tensor;

pub use archive::TorchArchive;
pub use checkpoint::{NnUnetCheckpoint, StateDictEntry};
pub use rebuild::{codecs_encode, numpy_scalar, tensor_ref, torch_device};
pub use tensor::{ByteOrder, StorageDType, TensorRef};
