//! The VM's memory allocator: power-of-two size classes with a free list each, carved from the
//! top of linear memory (docs/architecture.md "Size").
//!
//! The plugin is `no_std` in the VM, so it brings its own allocator instead of std's dlmalloc
//! (about 10 KB of code for general-purpose coalescing a gateway VM does not need). A request
//! allocates the same few shapes over and over (header pairs, the token, a call body, an edit),
//! so a freed block is reused by the next allocation of its class in constant time; memory is
//! never returned to the host (a wasm memory cannot shrink anyway). The cost is rounding up to a
//! power of two: at most twice the bytes asked for.
//!
//! [`Heap`] is the algorithm over a [`Memory`] (the wasm memory in the VM, a buffer in the unit
//! tests); [`VmHeap`] is the `#[global_allocator]` of the wasm build.

use ::core::alloc::Layout;

/// Linear memory that can only grow, by pages of [`PAGE`] bytes.
pub trait Memory {
    /// Grows by `pages`; the memory's new end, or `None` when the host refuses.
    fn grow(&mut self, pages: usize) -> Option<usize>;
}

/// A wasm page.
pub const PAGE: usize = 65_536;
/// The smallest block: room for the free list's link.
const MIN_CLASS: u32 = 3;
/// Blocks are aligned to their size up to this; larger alignments are refused (Rust asks for
/// them only for over-aligned types, which the plugin has none of).
const MAX_ALIGN: usize = 4096;

/// The allocator's state. `free[k]` heads the list of free blocks of `2^k` bytes (0: empty);
/// each free block holds the address of the next in its first word.
pub struct Heap<M> {
    memory: M,
    free: [usize; usize::BITS as usize],
    /// Unused memory between `next` and `end`.
    next: usize,
    end: usize,
}

impl<M: Memory> Heap<M> {
    /// A heap over `[start, end)` of `memory`, growing `memory` past `end` when that is used up.
    pub const fn new(memory: M, start: usize, end: usize) -> Heap<M> {
        Heap {
            memory,
            free: [0; usize::BITS as usize],
            next: start,
            end,
        }
    }

    /// A block for `layout`, or null when memory cannot grow.
    pub fn alloc(&mut self, layout: Layout) -> *mut u8 {
        let Some(class) = class_of(layout) else {
            return ::core::ptr::null_mut();
        };
        let head = self.free.get(class).copied().unwrap_or(0);
        if head != 0 {
            // SAFETY: `head` is a free block of this class; its first word is the next link.
            let next = unsafe { (head as *const usize).read() };
            self.set_head(class, next);
            return head as *mut u8;
        }
        self.carve(class)
    }

    /// Returns the block at `ptr` (allocated for `layout`) to its class's free list.
    ///
    /// # Safety
    /// `ptr` came from [`Heap::alloc`] or [`Heap::realloc`] of this heap with the same layout and
    /// is not used afterwards.
    pub unsafe fn dealloc(&mut self, ptr: *mut u8, layout: Layout) {
        let Some(class) = class_of(layout) else {
            return;
        };
        let head = self.free.get(class).copied().unwrap_or(0);
        // SAFETY: the block is at least a word long and word-aligned (MIN_CLASS), and is ours.
        unsafe { (ptr as *mut usize).write(head) };
        self.set_head(class, ptr as usize);
    }

    /// Resizes the block at `ptr`: in place when the new size has the same class, else a new
    /// block with the contents copied.
    ///
    /// # Safety
    /// As for [`Heap::dealloc`]; on success the old pointer is no longer valid.
    pub unsafe fn realloc(&mut self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
            return ::core::ptr::null_mut();
        };
        if class_of(new_layout) == class_of(layout) {
            return ptr;
        }
        let new = self.alloc(new_layout);
        if !new.is_null() {
            // SAFETY: both blocks are ours, distinct and at least `min(old, new)` bytes long.
            unsafe {
                ::core::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        new
    }

    fn set_head(&mut self, class: usize, block: usize) {
        if let Some(head) = self.free.get_mut(class) {
            *head = block;
        }
    }

    /// A new block of class `class` from the unused top, growing the memory when needed.
    fn carve(&mut self, class: usize) -> *mut u8 {
        let size = 1usize << class;
        let align = size.min(MAX_ALIGN);
        let Some(start) = self.next.checked_add(align - 1).map(|n| n & !(align - 1)) else {
            return ::core::ptr::null_mut();
        };
        let Some(stop) = start.checked_add(size) else {
            return ::core::ptr::null_mut();
        };
        if stop > self.end {
            let pages = (stop - self.end).div_ceil(PAGE);
            match self.memory.grow(pages) {
                Some(end) if end >= stop => self.end = end,
                _ => return ::core::ptr::null_mut(),
            }
        }
        self.next = stop;
        start as *mut u8
    }
}

/// The size class (log2 of the block size) serving `layout`: size and alignment rounded up to a
/// power of two, at least a word.
fn class_of(layout: Layout) -> Option<usize> {
    if layout.align() > MAX_ALIGN {
        return None;
    }
    let size = layout.size().max(layout.align());
    let class = size
        .checked_next_power_of_two()?
        .trailing_zeros()
        .max(MIN_CLASS);
    usize::try_from(class).ok()
}

/// The global allocator of the wasm build: a [`Heap`] over the module's own memory, starting at
/// the linker's `__heap_base`.
#[cfg(target_arch = "wasm32")]
pub mod vm {
    use super::{Heap, Memory, PAGE};
    use ::core::alloc::{GlobalAlloc, Layout};
    use ::core::cell::UnsafeCell;

    /// Memory 0 of the module.
    pub struct WasmMemory;

    impl Memory for WasmMemory {
        fn grow(&mut self, pages: usize) -> Option<usize> {
            let old = ::core::arch::wasm32::memory_grow(0, pages);
            (old != usize::MAX).then(|| ::core::arch::wasm32::memory_size(0) * PAGE)
        }
    }

    extern "C" {
        /// First byte after the data segments and the stack (set by wasm-ld).
        static __heap_base: u8;
    }

    /// The heap, created on first use (the heap base is a link-time address, not a constant).
    pub struct VmHeap(UnsafeCell<Option<Heap<WasmMemory>>>);

    // SAFETY: a proxy-wasm VM is single-threaded (wasm32 without the atomics feature): the
    // allocator is never entered from two threads, and it does not re-enter itself.
    unsafe impl Sync for VmHeap {}

    impl VmHeap {
        #[allow(clippy::mut_from_ref)] // single-threaded, never re-entered: see `Sync` above
        fn heap(&self) -> &mut Heap<WasmMemory> {
            // SAFETY: no other reference to the heap is alive (single thread, no re-entry).
            let slot = unsafe { &mut *self.0.get() };
            slot.get_or_insert_with(|| {
                // Only the address of the linker symbol is taken, never its value.
                let start = ::core::ptr::addr_of!(__heap_base) as usize;
                let end = ::core::arch::wasm32::memory_size(0) * PAGE;
                Heap::new(WasmMemory, start, end)
            })
        }
    }

    // SAFETY: blocks never overlap (carved once from the top, reused only after dealloc) and are
    // aligned to their power-of-two size (up to 4096, larger alignments return null).
    // Not inlined: one call per allocation site instead of a copy of the allocator in each.
    unsafe impl GlobalAlloc for VmHeap {
        #[inline(never)]
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            self.heap().alloc(layout)
        }

        #[inline(never)]
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: the GlobalAlloc contract is `Heap::dealloc`'s.
            unsafe { self.heap().dealloc(ptr, layout) }
        }

        #[inline(never)]
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            // SAFETY: the GlobalAlloc contract is `Heap::realloc`'s.
            unsafe { self.heap().realloc(ptr, layout, new_size) }
        }
    }

    #[global_allocator]
    static ALLOCATOR: VmHeap = VmHeap(UnsafeCell::new(None));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A memory backed by one buffer, handing out pages until `limit`.
    struct Buffer {
        bytes: Vec<u64>,
        end: usize,
    }

    impl Buffer {
        fn new(pages: usize) -> (Buffer, usize) {
            let bytes = vec![0u64; pages * PAGE / 8 + MAX_ALIGN / 8];
            let base = bytes.as_ptr() as usize;
            let start = (base + MAX_ALIGN - 1) & !(MAX_ALIGN - 1);
            (Buffer { bytes, end: start }, start)
        }

        fn limit(&self) -> usize {
            self.bytes.as_ptr() as usize + self.bytes.len() * 8
        }
    }

    impl Memory for Buffer {
        fn grow(&mut self, pages: usize) -> Option<usize> {
            let end = self.end + pages * PAGE;
            (end <= self.limit()).then(|| {
                self.end = end;
                end
            })
        }
    }

    fn heap(pages: usize) -> Heap<Buffer> {
        let (memory, start) = Buffer::new(pages);
        Heap::new(memory, start + 8, start)
    }

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    #[test]
    fn classes_round_up_to_a_power_of_two_of_at_least_a_word() {
        assert_eq!(class_of(layout(1, 1)), Some(3));
        assert_eq!(class_of(layout(8, 8)), Some(3));
        assert_eq!(class_of(layout(9, 1)), Some(4));
        assert_eq!(class_of(layout(1, 64)), Some(6));
        assert_eq!(class_of(layout(4096, 1)), Some(12));
        assert_eq!(class_of(layout(4097, 1)), Some(13));
        assert_eq!(class_of(layout(8, 8192)), None);
    }

    #[test]
    fn blocks_are_aligned_disjoint_and_writable() {
        let mut heap = heap(16);
        let mut blocks: Vec<(usize, usize)> = Vec::new();
        for (i, (size, align)) in [
            (1, 1),
            (24, 8),
            (100, 4),
            (3, 2),
            (600, 16),
            (5000, 64),
            (8, 8),
        ]
        .into_iter()
        .cycle()
        .take(70)
        .enumerate()
        {
            let ptr = heap.alloc(layout(size, align));
            assert!(!ptr.is_null());
            assert_eq!(ptr as usize % align, 0, "{size}/{align}");
            unsafe { ptr.write_bytes(i as u8, size) };
            blocks.push((ptr as usize, size));
        }
        let mut sorted = blocks.clone();
        sorted.sort();
        for pair in sorted.windows(2) {
            assert!(pair[0].0 + pair[0].1 <= pair[1].0, "overlap: {pair:?}");
        }
        for (i, (ptr, size)) in blocks.iter().enumerate() {
            let bytes = unsafe { std::slice::from_raw_parts(*ptr as *const u8, *size) };
            assert!(
                bytes.iter().all(|b| *b == i as u8),
                "block {i} was overwritten"
            );
        }
    }

    #[test]
    fn a_freed_block_is_reused_by_its_class_only() {
        let mut heap = heap(4);
        let a = heap.alloc(layout(40, 8));
        let b = heap.alloc(layout(100, 8));
        unsafe { heap.dealloc(a, layout(40, 8)) };
        assert_ne!(
            heap.alloc(layout(100, 8)),
            a,
            "a 128-byte block from the 64-byte list"
        );
        assert_eq!(heap.alloc(layout(64, 8)), a, "same class: reused");
        unsafe { heap.dealloc(b, layout(100, 8)) };
        assert_eq!(heap.alloc(layout(65, 1)), b);
    }

    #[test]
    fn a_steady_pattern_stops_growing_the_memory() {
        let mut heap = heap(8);
        let shapes = [(17, 1), (300, 8), (4, 4), (1200, 8), (64, 8)];
        let mut top = 0;
        for round in 0..1000 {
            let blocks: Vec<_> = shapes
                .iter()
                .map(|&(s, a)| (heap.alloc(layout(s, a)), s, a))
                .collect();
            for (ptr, size, align) in blocks {
                assert!(!ptr.is_null());
                unsafe { heap.dealloc(ptr, layout(size, align)) };
            }
            if round == 0 {
                top = heap.next;
            }
            assert_eq!(heap.next, top, "round {round} carved new memory");
        }
    }

    #[test]
    fn realloc_keeps_the_block_within_its_class_and_copies_across() {
        let mut heap = heap(4);
        let ptr = heap.alloc(layout(20, 1));
        unsafe { ptr.copy_from(b"abcdefghijklmnopqrst".as_ptr(), 20) };
        let same = unsafe { heap.realloc(ptr, layout(20, 1), 32) };
        assert_eq!(same, ptr);
        let moved = unsafe { heap.realloc(same, layout(32, 1), 200) };
        assert_ne!(moved, ptr);
        let bytes = unsafe { std::slice::from_raw_parts(moved, 20) };
        assert_eq!(bytes, b"abcdefghijklmnopqrst");
        assert_eq!(
            heap.alloc(layout(30, 1)),
            ptr,
            "the old block went back to its list"
        );
    }

    #[test]
    fn growth_is_by_whole_pages_and_a_refusal_is_null() {
        let mut heap = heap(2);
        let first = heap.alloc(layout(PAGE, 8));
        assert!(!first.is_null());
        assert_eq!(heap.end, heap.memory.end, "the heap's end is the memory's");
        assert!(
            heap.alloc(layout(4 * PAGE, 8)).is_null(),
            "beyond the buffer: refused"
        );
        assert!(
            !heap.alloc(layout(16, 8)).is_null(),
            "small blocks still fit"
        );
    }
}
