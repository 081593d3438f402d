// The heap tap's shared table: written by the LD_PRELOAD library in the target (CHeapTap),
// mapped read-only by mshmon (Probes). One fixed layout, no pointers, so both sides agree
// whatever their address spaces. Counters are updated with relaxed atomics; a reader sees
// each one whole, and totals that may lag one another by the calls in flight.
#ifndef MSHMON_TAP_H
#define MSHMON_TAP_H
#include <stdint.h>

#define MSHMON_TAP_MAGIC 0x3170617474686d73ULL  /* "mshttap1" little-endian */
#define MSHMON_TAP_VERSION 1
/// Call sites kept; a site past this is counted in slot 0 ("other sites").
#define MSHMON_TAP_SITES 8192
/// Return addresses per site: the allocator's caller first.
#define MSHMON_TAP_DEPTH 4
/// The environment variable naming the table's file (a tmpfs file mshmon creates).
#define MSHMON_TAP_ENV "MSHMON_TAP_FILE"

typedef struct {
    /// Hash of the frames; 0: free slot. Set once, by the thread that claims the slot.
    uint64_t key;
    /// 1 once `frames` is written (a reader skips the slot before that).
    uint32_t ready;
    uint32_t depth;
    uint64_t frames[MSHMON_TAP_DEPTH];
    int64_t live_blocks;
    int64_t live_bytes;
    /// Allocations from this site ever made.
    uint64_t allocations;
} mshmon_tap_site;

typedef struct {
    uint64_t magic;
    uint32_t version;
    /// The process writing the table (0 until one claims it; a child after fork or an exec'd
    /// program finds it taken and keeps a private table instead).
    int32_t owner_pid;
    int64_t live_blocks;
    int64_t live_bytes;
    int64_t peak_bytes;
    uint64_t calls;
    /// Allocations counted in slot 0 because the site table was full.
    uint64_t overflowed;
    uint64_t reserved[8];
    mshmon_tap_site sites[MSHMON_TAP_SITES];
} mshmon_tap_table;

#include <stddef.h>
/// Where the sites start (Swift does not import an array this large as a member).
static inline size_t mshmon_tap_sites_offset(void) { return offsetof(mshmon_tap_table, sites); }

#endif
