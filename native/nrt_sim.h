/*
 * nrt_sim.h - test-control API of the simulated Neuron runtime (native/nrt_sim.c, built as libnrt.so by
 * native/build.sh). Not part of the real libnrt: only the tests (Java through JNA, tools/neuron_sim through ctypes)
 * call these. Every control is also settable by an environment variable read when the library is loaded, so that a
 * child JVM can be configured from outside (see native/README.md):
 *
 *   NRT_SIM_INJECT="nrt_load:0:1:4;nrt_execute:2:1:1005"   nrtsim_inject(call, skip, count, status) per item
 *   NRT_SIM_EXEC_BARRIER="2:5000"                           nrtsim_set_exec_barrier(parties, timeout_ms)
 *   NRT_SIM_EXEC_DELAY_US=1500                              nrtsim_set_exec_delay_us(us)
 *   NRT_SIM_LEGACY_DTYPES=1                                 nrtsim_set_legacy_dtypes(1)
 *
 * All functions are thread-safe and may be called before nrt_init and after nrt_close.
 */
#ifndef SDJVM_NRT_SIM_H
#define SDJVM_NRT_SIM_H

#include <stdint.h>

#include "nrt_binding.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The deprecated-free names of the NeuronCore counts (nrt.h); same values as nrt_get_total_nc_count /
 * nrt_get_visible_nc_count. Exported by the simulator; not used by the JVM. */
NRT_STATUS nrt_get_total_vnc_count(uint32_t *vnc_count);
NRT_STATUS nrt_get_visible_vnc_count(uint32_t *vnc_count);

/* Number of execs_per_vnc slots (VNC indices >= this are executed but not counted per VNC). */
#define NRTSIM_STATS_VNC_SLOTS 8

/*
 * Counters and gauges. EVERY field is an int64_t, in this order, with no padding, so JNA can read the struct as a
 * long[NRTSIM_STATS_COUNT] (index in the comment). nrtsim_stat_name(i) returns the field name of index i
 * (execs_per_vnc[k] is "execs_per_vnc[k]"), so a binding can also map by name and check the count with
 * nrtsim_stats_count(). New fields are only ever appended.
 *
 * Counters count calls since the library was loaded or since nrtsim_reset_stats(); gauges (marked "live") are the
 * current state and are not reset. A call refused by an injected status (nrtsim_inject) counts as a failed call.
 */
typedef struct nrtsim_stats {
    int64_t init_calls;               /*  0 nrt_init calls (any outcome) */
    int64_t close_calls;              /*  1 nrt_close calls */
    int64_t initialized;              /*  2 live: 1 between a successful nrt_init and nrt_close, else 0 */
    int64_t loads;                    /*  3 successful nrt_load */
    int64_t failed_loads;             /*  4 nrt_load that returned an error */
    int64_t unloads;                  /*  5 successful nrt_unload */
    int64_t live_models;              /*  6 live: loaded models */
    int64_t tensor_allocs;            /*  7 successful nrt_tensor_allocate */
    int64_t tensor_frees;             /*  8 nrt_tensor_free of a live tensor */
    int64_t live_tensors;             /*  9 live: allocated tensors */
    int64_t set_allocs;               /* 10 successful nrt_allocate_tensor_set */
    int64_t set_frees;                /* 11 nrt_destroy_tensor_set of a live set */
    int64_t live_sets;                /* 12 live: tensor sets */
    int64_t tensor_writes;            /* 13 successful nrt_tensor_write */
    int64_t tensor_reads;             /* 14 successful nrt_tensor_read */
    int64_t executes;                 /* 15 successful nrt_execute */
    int64_t failed_executes;          /* 16 nrt_execute that returned an error */
    int64_t max_concurrent_executes;  /* 17 most nrt_execute calls in flight at once (validated, not yet returned) */
    int64_t max_concurrent_vnc_mask;  /* 18 bit v set: VNC v (as passed to nrt_load) was executing when the maximum
                                            of field 17 was first reached */
    int64_t exec_ns_total;            /* 19 nanoseconds spent in simulated compute incl. delays (not barrier waits) */
    int64_t leaked_at_close;          /* 20 models + tensors + sets + tensor-info arrays nrt_close had to free */
    int64_t execs_per_vnc[NRTSIM_STATS_VNC_SLOTS]; /* 21..28 successful nrt_execute per VNC (as passed to nrt_load) */
    int64_t barrier_timeouts;         /* 29 executions that left the exec barrier by its timeout */
    int64_t invalid_handles;          /* 30 calls given a model/tensor/set/info pointer that is not live */
    int64_t injected_failures;        /* 31 calls answered by an injected status */
    int64_t failed_calls;             /* 32 every API call that returned a status other than NRT_SUCCESS */
    int64_t live_tensor_infos;        /* 33 live: nrt_get_model_tensor_info arrays not yet freed */
    int64_t unloads_during_execute;   /* 34 nrt_unload called while an nrt_execute of that model was in flight (a
                                            caller freeing a model under a running execute; the simulator waits) */
} nrtsim_stats_t;

#define NRTSIM_STATS_COUNT 35

/* Copies the current statistics into *out (no-op for NULL). */
void nrtsim_get_stats(nrtsim_stats_t *out);

/* Resets the counters (including the maxima and barrier_timeouts); gauges (initialized, live_*) keep their values. */
void nrtsim_reset_stats(void);

/* NRTSIM_STATS_COUNT: the number of int64 fields of nrtsim_stats_t. */
int nrtsim_stats_count(void);

/* Field name of index i (0 <= i < NRTSIM_STATS_COUNT), or NULL. Static storage. */
const char *nrtsim_stat_name(int index);

/*
 * Failure injection: of the following calls of `call`, skip `skip` calls, then answer the next `count` calls
 * (count < 0: all following calls) with `status`, without doing anything (no state change, nothing allocated; the
 * out-parameters are not written). Rules stay until used up or nrtsim_clear_injections(); they survive
 * nrt_close/nrt_init. When several rules match a call, the first added one that fires decides the status.
 * Injectable calls: nrt_init, nrt_load, nrt_unload, nrt_execute, nrt_tensor_allocate, nrt_tensor_read,
 * nrt_tensor_write, nrt_allocate_tensor_set, nrt_add_tensor_to_tensor_set, nrt_get_model_tensor_info,
 * nrt_get_version, nrt_get_total_nc_count, nrt_get_visible_nc_count, nrt_get_total_vnc_count,
 * nrt_get_visible_vnc_count (functions returning void cannot fail and are not injectable).
 * Returns 0, or -1 (message on stderr) for an unknown call, skip < 0, count == 0 or status == NRT_SUCCESS.
 */
int nrtsim_inject(const char *call, int skip, int count, int status);

/* Removes every injection rule. */
void nrtsim_clear_injections(void);

/*
 * Execution barrier: while parties >= 2, every nrt_execute, after validating its arguments and before computing,
 * waits until `parties` executions are waiting at the barrier at once (they are then all in flight together and
 * leave together), or until timeout_ms passes (then it proceeds alone and barrier_timeouts is incremented).
 * parties <= 1 turns the barrier off and releases the waiting executions. timeout_ms <= 0 means 10000.
 */
void nrtsim_set_exec_barrier(int parties, int timeout_ms);

/* Extra delay (sleep) of every nrt_execute, added to the program's delay_us; us <= 0 turns it off. */
void nrtsim_set_exec_delay_us(int us);

/* on != 0: nrt_get_model_tensor_info reports dtypes in the numbering of SDK < 2.28 (nrt_legacy_dtype_t);
 * on == 0: the SDK 2.28+ numbering (nrt_dtype_t), the default. Applies to later nrt_get_model_tensor_info calls. */
void nrtsim_set_legacy_dtypes(int on);

/* 1: nrt_get_model_tensor_info reports names, usage and byte sizes only (ndim 0, dtype 0), as the runtime does for a
 * NEFF whose debug information was stripped (also NRT_SIM_BARE_TENSOR_INFO=1); 0: full descriptions. */
void nrtsim_set_bare_tensor_info(int on);

#ifdef __cplusplus
}
#endif

#endif /* SDJVM_NRT_SIM_H */
