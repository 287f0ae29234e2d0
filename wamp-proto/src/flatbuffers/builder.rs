//! A minimal Flatbuffers builder that reproduces the layout algorithm of the
//! reference Python `flatbuffers.Builder` byte for byte (alignment, vtable
//! trimming and de-duplication, `Finish` without file identifier).
//!
//! Byte-exactness with Autobahn|Python is the reason this exists instead of
//! the `flatbuffers` crate: Autobahn writes WAMP message codes, not union
//! indices, into the union type field, so generated code would not fit, and
//! owning the ~150 lines of layout logic lets us check every byte against the
//! Python implementation. Output is built back to front in one `Vec` that is
//! handed to `Bytes` without a copy.

use bytes::Bytes;

/// Back-to-front buffer builder (see module docs).
pub(crate) struct Builder {
    buf: Vec<u8>,
    head: usize,
    minalign: usize,
    /// Offsets (from the end) of the fields of the table being built; 0 = unset.
    vtable: Vec<u32>,
    object_end: u32,
    /// Offsets (from the end) of every vtable written so far.
    vtables: Vec<u32>,
    vector_num_elems: u32,
}

impl Builder {
    /// A builder with room for `capacity` bytes before it has to grow.
    pub(crate) fn with_capacity(capacity: usize) -> Builder {
        let capacity = capacity.max(64);
        Builder {
            buf: vec![0; capacity],
            head: capacity,
            minalign: 1,
            vtable: Vec::new(),
            object_end: 0,
            vtables: Vec::new(),
            vector_num_elems: 0,
        }
    }

    /// Bytes written so far (offsets are measured from the end).
    fn offset(&self) -> u32 {
        (self.buf.len() - self.head) as u32
    }

    fn grow(&mut self) {
        let old = self.buf.len();
        let new = (old * 2).max(1);
        let mut nb = vec![0u8; new];
        nb[new - old..].copy_from_slice(&self.buf);
        self.buf = nb;
        self.head += new - old;
    }

    fn pad(&mut self, n: usize) {
        for _ in 0..n {
            self.head -= 1;
            self.buf[self.head] = 0;
        }
    }

    /// Aligns so that an element of `size` can be written after
    /// `additional` bytes, growing the buffer as needed (Python `Prep`).
    fn prep(&mut self, size: usize, additional: usize) {
        if size > self.minalign {
            self.minalign = size;
        }
        let align = (!(self.offset() as usize + additional)).wrapping_add(1) & (size - 1);
        let needed = align + size + additional;
        while self.head < needed {
            self.grow();
        }
        self.pad(align);
    }

    fn place(&mut self, b: &[u8]) {
        // Callers `prep` first, except `end_vector`, whose length word the
        // vector's `start_vector` reserved room for, which is too little
        // when the elements are larger than announced (Autobahn's id
        // vectors announce 4-byte elements and hold u64s). Growing adds
        // room at the front only, so the bytes written stay the same.
        while self.head < b.len() {
            self.grow();
        }
        self.head -= b.len();
        self.buf[self.head..self.head + b.len()].copy_from_slice(b);
    }

    fn prepend_u8(&mut self, x: u8) {
        self.prep(1, 0);
        self.place(&[x]);
    }
    fn prepend_u16(&mut self, x: u16) {
        self.prep(2, 0);
        self.place(&x.to_le_bytes());
    }
    fn prepend_u32(&mut self, x: u32) {
        self.prep(4, 0);
        self.place(&x.to_le_bytes());
    }
    /// Prepends a `u64` (also used for vector elements).
    pub(crate) fn prepend_u64(&mut self, x: u64) {
        self.prep(8, 0);
        self.place(&x.to_le_bytes());
    }

    /// Prepends an offset to `off`, relative to where it is written.
    pub(crate) fn prepend_uoffset(&mut self, off: u32) {
        self.prep(4, 0);
        let rel = self.offset() - off + 4;
        self.place(&rel.to_le_bytes());
    }

    /// Starts a vector of `n` elements of `elem` bytes (Python `StartVector`).
    pub(crate) fn start_vector(&mut self, elem: usize, n: usize, alignment: usize) {
        self.vector_num_elems = n as u32;
        self.prep(4, elem * n);
        self.prep(alignment, elem * n);
    }

    /// Ends a vector; returns its offset.
    pub(crate) fn end_vector(&mut self) -> u32 {
        let n = self.vector_num_elems;
        self.place(&n.to_le_bytes());
        self.offset()
    }

    /// Writes a NUL-terminated string; returns its offset.
    pub(crate) fn create_string(&mut self, s: &str) -> u32 {
        let b = s.as_bytes();
        self.prep(4, b.len() + 1);
        self.place(&[0]);
        self.place(b);
        self.vector_num_elems = b.len() as u32;
        self.end_vector()
    }

    /// Writes a `[ubyte]` vector; returns its offset.
    pub(crate) fn create_bytes(&mut self, b: &[u8]) -> u32 {
        self.prep(4, b.len());
        self.place(b);
        self.vector_num_elems = b.len() as u32;
        self.end_vector()
    }

    /// Starts a table with `num_fields` slots.
    pub(crate) fn start_object(&mut self, num_fields: usize) {
        self.vtable.clear();
        self.vtable.resize(num_fields, 0);
        self.object_end = self.offset();
    }

    fn slot(&mut self, i: usize) {
        self.vtable[i] = self.offset();
    }

    /// Adds a `u64` field unless it equals the default 0.
    pub(crate) fn add_u64(&mut self, i: usize, x: u64) {
        if x != 0 {
            self.prepend_u64(x);
            self.slot(i);
        }
    }
    /// Adds a `u32` field unless it equals the default 0.
    pub(crate) fn add_u32(&mut self, i: usize, x: u32) {
        if x != 0 {
            self.prepend_u32(x);
            self.slot(i);
        }
    }
    /// Adds a `u16` field unless it equals the default 0.
    pub(crate) fn add_u16(&mut self, i: usize, x: u16) {
        if x != 0 {
            self.prepend_u16(x);
            self.slot(i);
        }
    }
    /// Adds a `u8` (enum) field unless it equals `default`.
    pub(crate) fn add_u8(&mut self, i: usize, x: u8, default: u8) {
        if x != default {
            self.prepend_u8(x);
            self.slot(i);
        }
    }
    /// Adds a `bool` field unless it equals `default`.
    pub(crate) fn add_bool(&mut self, i: usize, x: bool, default: bool) {
        self.add_u8(i, x as u8, default as u8);
    }
    /// Adds an offset field (strings, vectors, tables).
    pub(crate) fn add_offset(&mut self, i: usize, off: u32) {
        if off != 0 {
            self.prepend_uoffset(off);
            self.slot(i);
        }
    }

    /// Ends the current table, writing (or re-using) its vtable; returns
    /// the table's offset (Python `EndObject`/`WriteVtable`).
    pub(crate) fn end_object(&mut self) -> u32 {
        self.prepend_u32(0);
        let object_offset = self.offset();
        let mut n = self.vtable.len();
        while n > 0 && self.vtable[n - 1] == 0 {
            n -= 1;
        }
        let object_size = (object_offset - self.object_end) as u16;
        let vbytes = ((n + 2) * 2) as u16;
        let entry = |f: u32| {
            if f == 0 {
                0u16
            } else {
                (object_offset - f) as u16
            }
        };

        let mut existing = None;
        'search: for &vt_off in &self.vtables {
            let pos = self.buf.len() - vt_off as usize;
            let len = u16::from_le_bytes([self.buf[pos], self.buf[pos + 1]]);
            if len != vbytes {
                continue;
            }
            let size = u16::from_le_bytes([self.buf[pos + 2], self.buf[pos + 3]]);
            if size != object_size {
                continue;
            }
            for (k, &f) in self.vtable[..n].iter().enumerate() {
                let at = pos + 4 + 2 * k;
                if u16::from_le_bytes([self.buf[at], self.buf[at + 1]]) != entry(f) {
                    continue 'search;
                }
            }
            existing = Some(vt_off);
            break;
        }

        let soffset: i32 = match existing {
            Some(vt_off) => vt_off as i32 - object_offset as i32,
            None => {
                for k in (0..n).rev() {
                    let e = entry(self.vtable[k]);
                    self.prepend_u16(e);
                }
                self.prepend_u16(object_size);
                self.prepend_u16(vbytes);
                let vt_off = self.offset();
                self.vtables.push(vt_off);
                (vt_off - object_offset) as i32
            }
        };
        // Offsets count from the end, so this stays right if the buffer grew.
        let object_pos = self.buf.len() - object_offset as usize;
        self.buf[object_pos..object_pos + 4].copy_from_slice(&soffset.to_le_bytes());
        object_offset
    }

    /// Finishes the buffer with `root` as root table (no file identifier).
    pub(crate) fn finish(mut self, root: u32) -> Bytes {
        self.prep(self.minalign, 4);
        self.prepend_uoffset(root);
        let head = self.head;
        Bytes::from(self.buf).slice(head..)
    }
}
