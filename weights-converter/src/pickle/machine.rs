//! The pickle virtual machine (protocols 0-5 minus out-of-band buffers and the extension
//! registry), enough for everything `torch.save` writes.

use std::collections::HashMap;
use std::rc::Rc;

use super::value::{Call, Heap, Object, Value};

/// Why a pickle could not be read, and where.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("at byte {offset}: {reason}")]
pub struct PickleError {
    /// Offset of the opcode that failed.
    pub offset: usize,
    /// What went wrong.
    pub reason: String,
}

/// A fully read pickle: the arena and the top-level value.
#[derive(Debug, Clone)]
pub struct Unpickled {
    /// Every container and call result.
    pub heap: Heap,
    /// The value `STOP` returned.
    pub root: Value,
}

/// Runs the pickle in `data` and returns its value.
///
/// Globals and calls are recorded, not executed, so any pickle that is well formed can be read;
/// only malformed input is an error.
///
/// ```
/// use weights_converter::pickle::{unpickle, Value};
/// // pickle.dumps({"a": 1}, protocol=2)
/// let data = b"\x80\x02}q\x00X\x01\x00\x00\x00aq\x01K\x01s.";
/// let unpickled = unpickle(data).unwrap();
/// assert_eq!(unpickled.heap.dict_get(&unpickled.root, "a"), Some(&Value::Int(1)));
/// ```
pub fn unpickle(data: &[u8]) -> Result<Unpickled, PickleError> {
    let mut machine = Machine {
        data,
        pos: 0,
        op_start: 0,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        heap: Heap::default(),
    };
    let root = machine.run()?;
    Ok(Unpickled {
        heap: machine.heap,
        root,
    })
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    op_start: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u64, Value>,
    heap: Heap,
}

type OpResult<T> = Result<T, PickleError>;

impl<'a> Machine<'a> {
    fn fail<T>(&self, reason: impl Into<String>) -> OpResult<T> {
        Err(PickleError {
            offset: self.op_start,
            reason: reason.into(),
        })
    }

    fn take(&mut self, n: usize) -> OpResult<&'a [u8]> {
        let data = self.data;
        match self.pos.checked_add(n) {
            Some(end) if end <= data.len() => {
                let bytes = &data[self.pos..end];
                self.pos = end;
                Ok(bytes)
            }
            _ => self.fail(format!(
                "truncated: needs {n} bytes, {} left",
                data.len().saturating_sub(self.pos)
            )),
        }
    }

    fn take_array<const N: usize>(&mut self) -> OpResult<[u8; N]> {
        let bytes = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    fn u8(&mut self) -> OpResult<u8> {
        Ok(self.take_array::<1>()?[0])
    }

    fn u16(&mut self) -> OpResult<u16> {
        Ok(u16::from_le_bytes(self.take_array()?))
    }

    fn u32(&mut self) -> OpResult<u32> {
        Ok(u32::from_le_bytes(self.take_array()?))
    }

    fn i32(&mut self) -> OpResult<i32> {
        Ok(i32::from_le_bytes(self.take_array()?))
    }

    fn u64(&mut self) -> OpResult<u64> {
        Ok(u64::from_le_bytes(self.take_array()?))
    }

    /// A length prefix that must fit in the rest of the input.
    fn length(&mut self, raw: u64) -> OpResult<usize> {
        match usize::try_from(raw) {
            Ok(n) if n <= self.data.len() - self.pos => Ok(n),
            _ => self.fail(format!(
                "length {raw} runs past the end ({} bytes left)",
                self.data.len() - self.pos
            )),
        }
    }

    /// A text argument: the bytes up to the next `\n` (which is consumed).
    fn line(&mut self) -> OpResult<&'a [u8]> {
        let data = self.data;
        let rest = &data[self.pos..];
        match rest.iter().position(|&b| b == b'\n') {
            Some(n) => {
                self.pos += n + 1;
                Ok(&rest[..n])
            }
            None => self.fail("truncated: text argument without newline"),
        }
    }

    fn line_str(&mut self) -> OpResult<&'a str> {
        let line = self.line()?;
        match std::str::from_utf8(line) {
            Ok(s) => Ok(s),
            Err(_) => self.fail("text argument is not UTF-8"),
        }
    }

    fn utf8(&self, bytes: &[u8]) -> OpResult<Value> {
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(Value::Str(Rc::from(s))),
            Err(e) => self.fail(format!("string is not valid UTF-8: {e}")),
        }
    }

    fn push(&mut self, value: Value) {
        self.stack.push(value);
    }

    fn pop(&mut self) -> OpResult<Value> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return self.fail("stack underflow");
        }
        match self.stack.pop() {
            Some(v) => Ok(v),
            None => self.fail("stack underflow"),
        }
    }

    fn top(&self) -> OpResult<&Value> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return self.fail("stack underflow");
        }
        match self.stack.last() {
            Some(v) => Ok(v),
            None => self.fail("stack underflow"),
        }
    }

    /// Pops everything above the topmost mark, and the mark.
    fn pop_mark(&mut self) -> OpResult<Vec<Value>> {
        match self.marks.pop() {
            Some(mark) => Ok(self.stack.split_off(mark)),
            None => self.fail("no MARK on the stack"),
        }
    }

    fn memo_get(&self, key: u64) -> OpResult<Value> {
        match self.memo.get(&key) {
            Some(v) => Ok(v.clone()),
            None => self.fail(format!("memo key {key} was never stored")),
        }
    }

    fn memo_put(&mut self, key: u64) -> OpResult<()> {
        let value = self.top()?.clone();
        self.memo.insert(key, value);
        Ok(())
    }

    fn alloc(&mut self, object: Object) -> Value {
        self.heap.alloc(object)
    }

    fn run(&mut self) -> OpResult<Value> {
        loop {
            self.op_start = self.pos;
            let op = self.u8()?;
            match op {
                // PROTO
                0x80 => {
                    let version = self.u8()?;
                    if version > 5 {
                        return self.fail(format!("unsupported pickle protocol {version}"));
                    }
                }
                // FRAME: framing is only a read-ahead hint.
                0x95 => {
                    self.u64()?;
                }
                // STOP
                b'.' => {
                    let value = self.pop()?;
                    return Ok(value);
                }
                b'(' => self.marks.push(self.stack.len()),
                // POP
                b'0' => {
                    if self.marks.last() == Some(&self.stack.len()) {
                        self.marks.pop();
                    } else {
                        self.pop()?;
                    }
                }
                // POP_MARK
                b'1' => {
                    self.pop_mark()?;
                }
                // DUP
                b'2' => {
                    let v = self.top()?.clone();
                    self.push(v);
                }
                b'N' => self.push(Value::None),
                0x88 => self.push(Value::Bool(true)),
                0x89 => self.push(Value::Bool(false)),
                // BININT, BININT1, BININT2
                b'J' => {
                    let v = self.i32()?;
                    self.push(Value::Int(i64::from(v)));
                }
                b'K' => {
                    let v = self.u8()?;
                    self.push(Value::Int(i64::from(v)));
                }
                b'M' => {
                    let v = self.u16()?;
                    self.push(Value::Int(i64::from(v)));
                }
                // INT (text); "00"/"01" are protocol 0's booleans.
                b'I' => {
                    let line = self.line_str()?;
                    let value = match line {
                        "00" => Value::Bool(false),
                        "01" => Value::Bool(true),
                        _ => match line.trim().parse::<i64>() {
                            Ok(v) => Value::Int(v),
                            Err(_) => return self.fail(format!("bad INT literal {line:?}")),
                        },
                    };
                    self.push(value);
                }
                // LONG (text)
                b'L' => {
                    let line = self.line_str()?;
                    let digits = line.trim().trim_end_matches('L');
                    match digits.parse::<i64>() {
                        Ok(v) => self.push(Value::Int(v)),
                        Err(_) => return self.fail(format!("bad LONG literal {line:?}")),
                    }
                }
                // LONG1, LONG4
                0x8a => {
                    let n = usize::from(self.u8()?);
                    let bytes = self.take(n)?;
                    self.push(decode_long(bytes));
                }
                0x8b => {
                    let raw = self.i32()?;
                    if raw < 0 {
                        return self.fail("negative LONG4 length");
                    }
                    let n = self.length(raw as u64)?;
                    let bytes = self.take(n)?;
                    self.push(decode_long(bytes));
                }
                // BINFLOAT: big-endian IEEE double.
                b'G' => {
                    let v = f64::from_be_bytes(self.take_array()?);
                    self.push(Value::Float(v));
                }
                // FLOAT (text)
                b'F' => {
                    let line = self.line_str()?;
                    match line.trim().parse::<f64>() {
                        Ok(v) => self.push(Value::Float(v)),
                        Err(_) => return self.fail(format!("bad FLOAT literal {line:?}")),
                    }
                }
                // BINUNICODE, SHORT_BINUNICODE, BINUNICODE8
                b'X' => {
                    let raw = self.u32()?;
                    let n = self.length(u64::from(raw))?;
                    let bytes = self.take(n)?;
                    let v = self.utf8(bytes)?;
                    self.push(v);
                }
                0x8c => {
                    let n = usize::from(self.u8()?);
                    let bytes = self.take(n)?;
                    let v = self.utf8(bytes)?;
                    self.push(v);
                }
                0x8d => {
                    let raw = self.u64()?;
                    let n = self.length(raw)?;
                    let bytes = self.take(n)?;
                    let v = self.utf8(bytes)?;
                    self.push(v);
                }
                // UNICODE (text, raw-unicode-escape)
                b'V' => {
                    let line = self.line()?;
                    match decode_raw_unicode_escape(line) {
                        Some(s) => self.push(Value::Str(Rc::from(s))),
                        None => return self.fail("bad UNICODE escape"),
                    }
                }
                // BINSTRING, SHORT_BINSTRING: Python 2 `str`; torch.load decodes them as UTF-8.
                b'T' => {
                    let raw = self.i32()?;
                    if raw < 0 {
                        return self.fail("negative BINSTRING length");
                    }
                    let n = self.length(raw as u64)?;
                    let bytes = self.take(n)?;
                    self.push(py2_string(bytes));
                }
                b'U' => {
                    let n = usize::from(self.u8()?);
                    let bytes = self.take(n)?;
                    self.push(py2_string(bytes));
                }
                // STRING (text, a quoted Python literal)
                b'S' => {
                    let line = self.line()?;
                    match decode_quoted_string(line) {
                        Some(bytes) => self.push(py2_string(&bytes)),
                        None => return self.fail("bad STRING literal"),
                    }
                }
                // BINBYTES, SHORT_BINBYTES, BINBYTES8, BYTEARRAY8
                b'B' => {
                    let raw = self.u32()?;
                    let n = self.length(u64::from(raw))?;
                    let bytes = self.take(n)?;
                    self.push(Value::Bytes(Rc::from(bytes)));
                }
                b'C' => {
                    let n = usize::from(self.u8()?);
                    let bytes = self.take(n)?;
                    self.push(Value::Bytes(Rc::from(bytes)));
                }
                0x8e | 0x96 => {
                    let raw = self.u64()?;
                    let n = self.length(raw)?;
                    let bytes = self.take(n)?;
                    self.push(Value::Bytes(Rc::from(bytes)));
                }
                // EMPTY_TUPLE, TUPLE, TUPLE1-3
                b')' => {
                    let v = self.alloc(Object::Tuple(Vec::new()));
                    self.push(v);
                }
                b't' => {
                    let items = self.pop_mark()?;
                    let v = self.alloc(Object::Tuple(items));
                    self.push(v);
                }
                0x85..=0x87 => {
                    let n = usize::from(op - 0x84);
                    let floor = self.marks.last().copied().unwrap_or(0);
                    if self.stack.len() < floor + n {
                        return self.fail("stack underflow");
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    let v = self.alloc(Object::Tuple(items));
                    self.push(v);
                }
                // EMPTY_LIST, LIST
                b']' => {
                    let v = self.alloc(Object::List(Vec::new()));
                    self.push(v);
                }
                b'l' => {
                    let items = self.pop_mark()?;
                    let v = self.alloc(Object::List(items));
                    self.push(v);
                }
                // APPEND, APPENDS
                b'a' => {
                    let item = self.pop()?;
                    let target = self.top()?.clone();
                    self.extend_list(&target, vec![item])?;
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    let target = self.top()?.clone();
                    self.extend_list(&target, items)?;
                }
                // EMPTY_DICT, DICT
                b'}' => {
                    let v = self.alloc(Object::Dict(Vec::new()));
                    self.push(v);
                }
                b'd' => {
                    let items = self.pop_mark()?;
                    let pairs = self.pairs(items)?;
                    let v = self.alloc(Object::Dict(pairs));
                    self.push(v);
                }
                // SETITEM, SETITEMS
                b's' => {
                    let value = self.pop()?;
                    let key = self.pop()?;
                    let target = self.top()?.clone();
                    self.extend_dict(&target, vec![(key, value)])?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    let pairs = self.pairs(items)?;
                    let target = self.top()?.clone();
                    self.extend_dict(&target, pairs)?;
                }
                // EMPTY_SET, ADDITEMS, FROZENSET
                0x8f => {
                    let v = self.alloc(Object::Set(Vec::new()));
                    self.push(v);
                }
                0x90 => {
                    let items = self.pop_mark()?;
                    let target = self.top()?.clone();
                    self.extend_set(&target, items)?;
                }
                0x91 => {
                    let items = self.pop_mark()?;
                    let v = self.alloc(Object::Set(items));
                    self.push(v);
                }
                // GLOBAL, STACK_GLOBAL
                b'c' => {
                    let module = self.line_str()?.to_owned();
                    let name = self.line_str()?.to_owned();
                    let v = self.alloc(Object::Global { module, name });
                    self.push(v);
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (module, name) {
                        (Value::Str(module), Value::Str(name)) => {
                            let v = self.alloc(Object::Global {
                                module: module.to_string(),
                                name: name.to_string(),
                            });
                            self.push(v);
                        }
                        _ => return self.fail("STACK_GLOBAL needs two strings"),
                    }
                }
                // REDUCE
                b'R' => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let v = self.call(callable, args);
                    self.push(v);
                }
                // NEWOBJ: cls.__new__(cls, *args)
                0x81 => {
                    let args = self.pop()?;
                    let cls = self.pop()?;
                    let v = self.call(cls, args);
                    self.push(v);
                }
                // NEWOBJ_EX: keyword arguments are dropped (nothing torch writes uses them).
                0x92 => {
                    let _kwargs = self.pop()?;
                    let args = self.pop()?;
                    let cls = self.pop()?;
                    let v = self.call(cls, args);
                    self.push(v);
                }
                // OBJ: MARK cls args... OBJ
                b'o' => {
                    let mut items = self.pop_mark()?;
                    if items.is_empty() {
                        return self.fail("OBJ without a class");
                    }
                    let cls = items.remove(0);
                    let args = self.alloc(Object::Tuple(items));
                    let v = self.call(cls, args);
                    self.push(v);
                }
                // INST: MARK args... INST module\nname\n
                b'i' => {
                    let module = self.line_str()?.to_owned();
                    let name = self.line_str()?.to_owned();
                    let items = self.pop_mark()?;
                    let cls = self.alloc(Object::Global { module, name });
                    let args = self.alloc(Object::Tuple(items));
                    let v = self.call(cls, args);
                    self.push(v);
                }
                // BUILD
                b'b' => {
                    let state = self.pop()?;
                    let target = self.top()?.clone();
                    self.build(&target, state);
                }
                // PERSID, BINPERSID
                b'P' => {
                    let line = self.line()?;
                    let id = py2_string(line);
                    let v = self.alloc(Object::PersistentId(id));
                    self.push(v);
                }
                b'Q' => {
                    let id = self.pop()?;
                    let v = self.alloc(Object::PersistentId(id));
                    self.push(v);
                }
                // PUT, BINPUT, LONG_BINPUT, MEMOIZE
                b'p' => {
                    let line = self.line_str()?;
                    match line.trim().parse::<u64>() {
                        Ok(key) => self.memo_put(key)?,
                        Err(_) => return self.fail(format!("bad PUT key {line:?}")),
                    }
                }
                b'q' => {
                    let key = u64::from(self.u8()?);
                    self.memo_put(key)?;
                }
                b'r' => {
                    let key = u64::from(self.u32()?);
                    self.memo_put(key)?;
                }
                0x94 => {
                    let key = self.memo.len() as u64;
                    self.memo_put(key)?;
                }
                // GET, BINGET, LONG_BINGET
                b'g' => {
                    let line = self.line_str()?;
                    match line.trim().parse::<u64>() {
                        Ok(key) => {
                            let v = self.memo_get(key)?;
                            self.push(v);
                        }
                        Err(_) => return self.fail(format!("bad GET key {line:?}")),
                    }
                }
                b'h' => {
                    let key = u64::from(self.u8()?);
                    let v = self.memo_get(key)?;
                    self.push(v);
                }
                b'j' => {
                    let key = u64::from(self.u32()?);
                    let v = self.memo_get(key)?;
                    self.push(v);
                }
                0x82..=0x84 => {
                    return self.fail("extension registry opcodes (EXT1/2/4) are not supported")
                }
                0x97 | 0x98 => {
                    return self.fail("out-of-band buffers (protocol 5) are not supported")
                }
                other => return self.fail(format!("unknown opcode 0x{other:02x}")),
            }
        }
    }

    fn pairs(&self, items: Vec<Value>) -> OpResult<Vec<(Value, Value)>> {
        if !items.len().is_multiple_of(2) {
            return self.fail("odd number of items for a dict");
        }
        let mut pairs = Vec::with_capacity(items.len() / 2);
        let mut iter = items.into_iter();
        while let (Some(k), Some(v)) = (iter.next(), iter.next()) {
            pairs.push((k, v));
        }
        Ok(pairs)
    }

    fn extend_list(&mut self, target: &Value, items: Vec<Value>) -> OpResult<()> {
        let object = match target {
            Value::Ref(id) => self.heap.get_mut(*id),
            _ => None,
        };
        match object {
            Some(Object::List(list)) => list.extend(items),
            Some(Object::Call(call)) => call.list_items.extend(items),
            _ => return self.fail("APPEND(S) target is not a list"),
        }
        Ok(())
    }

    fn extend_dict(&mut self, target: &Value, pairs: Vec<(Value, Value)>) -> OpResult<()> {
        let object = match target {
            Value::Ref(id) => self.heap.get_mut(*id),
            _ => None,
        };
        match object {
            Some(Object::Dict(dict)) => dict.extend(pairs),
            Some(Object::Call(call)) => call.dict_items.extend(pairs),
            _ => return self.fail("SETITEM(S) target is not a dict"),
        }
        Ok(())
    }

    fn extend_set(&mut self, target: &Value, items: Vec<Value>) -> OpResult<()> {
        let object = match target {
            Value::Ref(id) => self.heap.get_mut(*id),
            _ => None,
        };
        match object {
            Some(Object::Set(set)) => set.extend(items),
            Some(Object::Call(call)) => call.list_items.extend(items),
            _ => return self.fail("ADDITEMS target is not a set"),
        }
        Ok(())
    }

    /// `BUILD`: recorded on call results; plain containers keep their items (an
    /// `OrderedDict`'s state is only its `_metadata` attribute).
    fn build(&mut self, target: &Value, state: Value) {
        if let Value::Ref(id) = target {
            if let Some(Object::Call(call)) = self.heap.get_mut(*id) {
                call.state = Some(state);
            }
        }
    }

    /// Records `callable(*args)`. Only the builtin containers are made into containers so that
    /// later `SETITEMS` / `APPENDS` land where Python would put them; everything else stays a
    /// [`Call`] for the reader to interpret.
    fn call(&mut self, callable: Value, args: Value) -> Value {
        let empty_args = matches!(self.heap.sequence(&args), Some(a) if a.is_empty());
        let container = match self.heap.global(&callable) {
            Some(("collections", "OrderedDict")) | Some(("builtins" | "__builtin__", "dict"))
                if empty_args =>
            {
                Some(Object::Dict(Vec::new()))
            }
            Some(("builtins" | "__builtin__", "list")) if empty_args => {
                Some(Object::List(Vec::new()))
            }
            Some(("builtins" | "__builtin__", "set" | "frozenset")) => {
                let first = self.heap.sequence(&args).and_then(|a| a.first()).cloned();
                match first {
                    None => Some(Object::Set(Vec::new())),
                    Some(items) => self
                        .heap
                        .sequence(&items)
                        .map(|items| Object::Set(items.to_vec())),
                }
            }
            _ => None,
        };
        let object = container.unwrap_or_else(|| {
            Object::Call(Call {
                callable,
                args,
                state: None,
                list_items: Vec::new(),
                dict_items: Vec::new(),
            })
        });
        self.alloc(object)
    }
}

/// LONG1 / LONG4 payload: little-endian two's complement.
fn decode_long(bytes: &[u8]) -> Value {
    if bytes.is_empty() {
        return Value::Int(0);
    }
    if bytes.len() <= 8 {
        let negative = bytes[bytes.len() - 1] & 0x80 != 0;
        let mut buf = if negative { [0xffu8; 8] } else { [0u8; 8] };
        buf[..bytes.len()].copy_from_slice(bytes);
        return Value::Int(i64::from_le_bytes(buf));
    }
    Value::BigInt(Rc::from(bytes))
}

/// A Python 2 `str`: text when it is UTF-8, else bytes.
fn py2_string(bytes: &[u8]) -> Value {
    match std::str::from_utf8(bytes) {
        Ok(s) => Value::Str(Rc::from(s)),
        Err(_) => Value::Bytes(Rc::from(bytes)),
    }
}

/// `raw-unicode-escape`: `\uXXXX` / `\UXXXXXXXX` escapes, every other byte is Latin-1.
fn decode_raw_unicode_escape(bytes: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let digits = match (b, bytes.get(i + 1)) {
            (b'\\', Some(b'u')) => 4,
            (b'\\', Some(b'U')) => 8,
            _ => 0,
        };
        if digits > 0 {
            let hex = bytes.get(i + 2..i + 2 + digits)?;
            let code = u32::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
            out.push(char::from_u32(code)?);
            i += 2 + digits;
        } else {
            out.push(char::from(b));
            i += 1;
        }
    }
    Some(out)
}

/// Protocol 0 `STRING`: a quoted Python literal with backslash escapes.
fn decode_quoted_string(line: &[u8]) -> Option<Vec<u8>> {
    let quote = *line.first()?;
    if line.len() < 2 || (quote != b'\'' && quote != b'"') || *line.last()? != quote {
        return None;
    }
    let body = &line[1..line.len() - 1];
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        if body[i] != b'\\' {
            out.push(body[i]);
            i += 1;
            continue;
        }
        let escaped = *body.get(i + 1)?;
        i += 2;
        match escaped {
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'r' => out.push(b'\r'),
            b'0' => out.push(0),
            b'x' => {
                let hex = std::str::from_utf8(body.get(i..i + 2)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            other => out.push(other),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_protocol_two_dict_with_memo_and_shared_list() {
        // pickle.dumps({"xs": [1, 2.5], "again": <same list>}, protocol=2)
        let data = b"\x80\x02}q\x00(X\x02\x00\x00\x00xsq\x01]q\x02(K\x01G@\x04\x00\x00\x00\x00\x00\x00eX\x05\x00\x00\x00againq\x03h\x02u.";
        let u = unpickle(data).unwrap();
        let xs = u.heap.dict_get(&u.root, "xs").unwrap();
        let again = u.heap.dict_get(&u.root, "again").unwrap();
        assert_eq!(xs, again, "memo GET must return the same object");
        assert_eq!(
            u.heap.sequence(xs).unwrap(),
            &[Value::Int(1), Value::Float(2.5)]
        );
    }

    #[test]
    fn decodes_long_ints() {
        assert_eq!(decode_long(&[]), Value::Int(0));
        assert_eq!(decode_long(&[0xff]), Value::Int(-1));
        assert_eq!(decode_long(&[0x00, 0x80]), Value::Int(-32768));
        assert_eq!(decode_long(&[0xff, 0x00]), Value::Int(255));
        assert!(matches!(decode_long(&[1; 9]), Value::BigInt(_)));
    }

    #[test]
    fn errors_instead_of_panicking_on_bad_input() {
        for data in [
            &b""[..],
            b"\x80\x02",
            b"\x80\x02X\xff\xff\xff\xff",
            b"\x80\x02h\x05.",
            b"\x80\x02e.",
            b"\x80\x02K\x01s.",
            b"\x80\x02\xff",
            b"\x80\x02t.",
            b"\x80\x02\x86.",
        ] {
            assert!(unpickle(data).is_err(), "{data:?}");
        }
    }

    #[test]
    fn reads_text_opcodes() {
        // pickle.dumps([1, 2.0, "a", True], protocol=0)
        let data = b"(lp0\nI1\naF2.0\naVa\np1\naI01\na.";
        let u = unpickle(data).unwrap();
        assert_eq!(
            u.heap.sequence(&u.root).unwrap(),
            &[
                Value::Int(1),
                Value::Float(2.0),
                Value::Str(Rc::from("a")),
                Value::Bool(true)
            ]
        );
    }

    #[test]
    fn sets_and_frozensets_become_sets() {
        // pickle.dumps({1, 2}, protocol=2) uses REDUCE(builtins.set, ([1, 2],))
        let data = b"\x80\x02c__builtin__\nset\nq\x00]q\x01(K\x01K\x02e\x85q\x02Rq\x03.";
        let u = unpickle(data).unwrap();
        assert_eq!(
            u.heap.object(&u.root),
            Some(&Object::Set(vec![Value::Int(1), Value::Int(2)]))
        );
    }
}
