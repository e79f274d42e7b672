//! Values produced by the pickle machine.
//!
//! Containers live in a [`Heap`] and are referred to by [`ObjectId`], so shared and mutated
//! objects (memo references, `APPENDS` after `BINPUT`) behave as in Python, and dropping a deeply
//! nested or cyclic structure never recurses.

use std::rc::Rc;

/// Index of an object in a [`Heap`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ObjectId(pub(crate) usize);

/// A pickled value: a scalar held inline, or a reference to a heap object.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Python `None`.
    None,
    /// Python `bool`.
    Bool(bool),
    /// Python `int` that fits in 64 bits.
    Int(i64),
    /// Python `int` wider than 64 bits: little-endian two's complement bytes.
    BigInt(Rc<[u8]>),
    /// Python `float`.
    Float(f64),
    /// Python `str`.
    Str(Rc<str>),
    /// Python `bytes` / `bytearray`.
    Bytes(Rc<[u8]>),
    /// A container, global or call result on the heap.
    Ref(ObjectId),
}

/// A heap object.
#[derive(Debug, Clone, PartialEq)]
pub enum Object {
    /// Python `tuple`.
    Tuple(Vec<Value>),
    /// Python `list`.
    List(Vec<Value>),
    /// Python `dict` or `collections.OrderedDict`, in insertion order.
    Dict(Vec<(Value, Value)>),
    /// Python `set` or `frozenset`.
    Set(Vec<Value>),
    /// A global name (`GLOBAL` / `STACK_GLOBAL`), e.g. `torch._utils._rebuild_tensor_v2`.
    Global {
        /// Module path, e.g. `torch._utils`.
        module: String,
        /// Attribute name, e.g. `_rebuild_tensor_v2`.
        name: String,
    },
    /// A persistent id (`BINPERSID`): torch uses it for storages.
    PersistentId(Value),
    /// The result of calling `callable(*args)` (`REDUCE`, `NEWOBJ`, `OBJ`, `INST`), kept as a
    /// recipe: the meaning of a call is decided by whoever reads it, so unknown globals are
    /// never an error.
    Call(Call),
}

/// A recorded call, with whatever `BUILD`, `APPENDS` and `SETITEMS` later did to its result.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// The callable (usually a [`Object::Global`]).
    pub callable: Value,
    /// The argument tuple.
    pub args: Value,
    /// State given by `BUILD`, if any.
    pub state: Option<Value>,
    /// Items appended by `APPEND(S)`.
    pub list_items: Vec<Value>,
    /// Items set by `SETITEM(S)`.
    pub dict_items: Vec<(Value, Value)>,
}

/// Arena holding every non-scalar value of one unpickling.
#[derive(Debug, Default, Clone)]
pub struct Heap {
    objects: Vec<Object>,
}

impl Heap {
    /// Stores `object` and returns a value referring to it.
    pub fn alloc(&mut self, object: Object) -> Value {
        self.objects.push(object);
        Value::Ref(ObjectId(self.objects.len() - 1))
    }

    /// The object `id` refers to (ids come from this heap, so the lookup cannot fail for them).
    pub fn get(&self, id: ObjectId) -> Option<&Object> {
        self.objects.get(id.0)
    }

    pub(crate) fn get_mut(&mut self, id: ObjectId) -> Option<&mut Object> {
        self.objects.get_mut(id.0)
    }

    /// The heap object behind `value`, if it is a reference.
    pub fn object(&self, value: &Value) -> Option<&Object> {
        match value {
            Value::Ref(id) => self.get(*id),
            _ => None,
        }
    }

    /// `(module, name)` when `value` is a global.
    pub fn global(&self, value: &Value) -> Option<(&str, &str)> {
        match self.object(value) {
            Some(Object::Global { module, name }) => Some((module, name)),
            _ => None,
        }
    }

    /// The elements when `value` is a tuple or a list.
    pub fn sequence(&self, value: &Value) -> Option<&[Value]> {
        match self.object(value) {
            Some(Object::Tuple(items)) | Some(Object::List(items)) => Some(items),
            _ => None,
        }
    }

    /// The items when `value` is a dict, or a call result that received `SETITEMS`
    /// (e.g. an `OrderedDict` subclass this reader does not know).
    pub fn dict_items(&self, value: &Value) -> Option<&[(Value, Value)]> {
        match self.object(value) {
            Some(Object::Dict(items)) => Some(items),
            Some(Object::Call(call)) if !call.dict_items.is_empty() => Some(&call.dict_items),
            _ => None,
        }
    }

    /// The value stored under the string key `key` of a dict (the last one, as Python keeps).
    pub fn dict_get(&self, value: &Value, key: &str) -> Option<&Value> {
        self.dict_items(value)?
            .iter()
            .rev()
            .find(|(k, _)| matches!(k, Value::Str(s) if &**s == key))
            .map(|(_, v)| v)
    }

    /// A short human-readable description of `value`'s type, for error messages.
    pub fn describe(&self, value: &Value) -> String {
        match value {
            Value::None => "None".into(),
            Value::Bool(_) => "bool".into(),
            Value::Int(_) | Value::BigInt(_) => "int".into(),
            Value::Float(_) => "float".into(),
            Value::Str(_) => "str".into(),
            Value::Bytes(_) => "bytes".into(),
            Value::Ref(id) => match self.get(*id) {
                Some(Object::Tuple(_)) => "tuple".into(),
                Some(Object::List(_)) => "list".into(),
                Some(Object::Dict(_)) => "dict".into(),
                Some(Object::Set(_)) => "set".into(),
                Some(Object::Global { module, name }) => format!("global {module}.{name}"),
                Some(Object::PersistentId(_)) => "persistent id".into(),
                Some(Object::Call(call)) => match self.global(&call.callable) {
                    Some((module, name)) => format!("{module}.{name}(...)"),
                    None => "call result".into(),
                },
                None => "dangling reference".into(),
            },
        }
    }
}
