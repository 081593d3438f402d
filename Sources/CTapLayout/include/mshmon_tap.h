// The heap tap's shared table: written by the LD_PRELOAD library in the target (CHeapTap),
// mapped read-only by mshmon (Probes). One fixed layout, no pointers, so both sides agree
// whatever their address spaces. Counters are updated with relaxed atomics; a reader sees
// each one whole, and totals that may lag one another by the calls in flight.
#ifndef MSHMON_TAP_H
#define MSHMON_TAP_H
#include <stdint.h>

#define MSHMON_TAP_MAGIC 0x3170617474686d73ULL  /* "mshttap1" little-endian */
#define MSHMON_TAP_VERSION 3
/// Call sites kept; a site past this is counted in slot 0 ("other sites").
#define MSHMON_TAP_SITES 8192
/// Return addresses per site: the allocator's caller first.
#define MSHMON_TAP_DEPTH 4
/// The environment variable naming the table's file (a tmpfs file mshmon creates).
#define MSHMON_TAP_ENV "MSHMON_TAP_FILE"

/// Per-thread counter slabs: a thread counts into its own with plain stores (no lock prefix);
/// slab 0 is shared, with atomic adds, by threads past the others. A site's live blocks and
/// bytes are the sums over the slabs (a block freed by another thread is subtracted there).
#define MSHMON_TAP_SLABS 64

typedef struct {
    /// Hash of the frames; 0: free slot. Set once, by the thread that claims the slot.
    uint64_t key;
    /// 1 once `frames` is written (a reader skips the slot before that).
    uint32_t ready;
    uint32_t depth;
    uint64_t frames[MSHMON_TAP_DEPTH];
} mshmon_tap_site;

typedef struct {
    int64_t live_blocks;
    int64_t live_bytes;
} mshmon_tap_count;

/// Totals are not kept: the reader sums the sites, and keeps the peak of what it has seen,
/// as mshmon does for glibc's counters.
typedef struct {
    uint64_t magic;
    uint32_t version;
    /// The process writing the table (0 until one claims it; a child after fork or an exec'd
    /// program finds it taken and keeps a private table instead).
    int32_t owner_pid;
    /// Calls counted in slot 0 because the site table was full.
    uint64_t overflowed;
    /// Bit n set: slab n belongs to a live thread (bit 0, the shared slab, always).
    uint64_t slabs_taken;
    /// The highest slab ever taken + 1: the reader sums slabs below it.
    uint32_t slabs_used;
    uint32_t reserved32;
    uint64_t reserved[6];
    mshmon_tap_site sites[MSHMON_TAP_SITES];
    mshmon_tap_count counts[MSHMON_TAP_SLABS][MSHMON_TAP_SITES];
} mshmon_tap_table;

#include <stddef.h>
/// Where the sites and the counts start (Swift does not import arrays this large as members).
static inline size_t mshmon_tap_sites_offset(void) { return offsetof(mshmon_tap_table, sites); }
static inline size_t mshmon_tap_counts_offset(void) { return offsetof(mshmon_tap_table, counts); }
/// The table's whole size (Swift's MemoryLayout leaves out the members it cannot import).
static inline size_t mshmon_tap_table_size(void) { return sizeof(mshmon_tap_table); }

#endif
