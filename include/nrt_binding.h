/*
 * nrt_binding.h - the subset of the AWS Neuron Runtime (libnrt.so) C API that stable-diffusion-jvm binds with JNA
 * (dev.sdjvm.backend.neuron.NeuronRuntime). Written by us from the Neuron Runtime API documentation
 * (awsdocs-neuron: neuron-runtime/api/nrt.h, nrt_status.h, nrt_version.h); names, types and values are the API's
 * own so that this file can be compiled against a real libnrt.so. It is not a copy of AWS's headers.
 *
 * When torch-neuronx (libtorchneuron.so) runs the models it owns the runtime: it calls nrt_init itself on first use.
 * The calls marked "safe before/without nrt_init" below are the only ones the JVM side makes in that mode.
 */
#ifndef SDJVM_NRT_BINDING_H
#define SDJVM_NRT_BINDING_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* nrt_status.h */
typedef enum {
    NRT_SUCCESS = 0,
    NRT_FAILURE = 1,
    NRT_INVALID = 2,
    NRT_INVALID_HANDLE = 3,
    NRT_RESOURCE = 4,
    NRT_TIMEOUT = 5,
    NRT_HW_ERROR = 6,
    NRT_QUEUE_FULL = 7,
    NRT_LOAD_NOT_ENOUGH_NC = 9,
    NRT_UNSUPPORTED_NEFF_VERSION = 10,
    NRT_FAIL_HOST_MEM_ALLOC = 11,
    NRT_UNINITIALIZED = 13,
    NRT_CLOSED = 14,
    NRT_QUEUE_EMPTY = 15,
    NRT_EXEC_UNIT_UNRECOVERABLE = 101,
    NRT_EXEC_BAD_INPUT = 1002,
    NRT_EXEC_COMPLETED_WITH_NUM_ERR = 1003,
    NRT_EXEC_COMPLETED_WITH_ERR = 1004,
    NRT_EXEC_NC_BUSY = 1005,
    NRT_EXEC_OOB = 1006,
    NRT_COLL_PENDING = 1100,
    NRT_EXEC_HW_ERR_COLLECTIVES = 1200,
    NRT_EXEC_HW_ERR_HBM_UE = 1201,
    NRT_EXEC_HW_ERR_NC_UE = 1202,
    NRT_EXEC_HW_ERR_DMA_ABORT = 1203,
    NRT_EXEC_SW_NQ_OVERFLOW = 1204,
    NRT_EXEC_HW_ERR_REPAIRABLE_HBM_UE = 1205,
    NRT_NETWORK_PROXY_FAILURE = 1206
} NRT_STATUS;

/* nrt_version.h */
#define RT_VERSION_DETAIL_LEN 128
#define GIT_HASH_LEN 64

typedef struct nrt_version {
    uint64_t rt_major;
    uint64_t rt_minor;
    uint64_t rt_patch;
    uint64_t rt_maintenance;
    char rt_detail[RT_VERSION_DETAIL_LEN];
    char git_hash[GIT_HASH_LEN];
} nrt_version_t;

/* Safe before nrt_init and while torch-neuronx owns the runtime. size = sizeof(nrt_version_t). */
NRT_STATUS nrt_get_version(nrt_version_t *ver, size_t size);

/* nrt.h */
typedef enum {
    NRT_FRAMEWORK_TYPE_INVALID = 0,
    NRT_FRAMEWORK_TYPE_NO_FW = 1,
    NRT_FRAMEWORK_TYPE_TENSORFLOW,
    NRT_FRAMEWORK_TYPE_PYTORCH,
    NRT_FRAMEWORK_TYPE_MXNET,
    NRT_FRAMEWORK_TYPE_PRECHECK
} nrt_framework_type_t;

/* NeuronCores present on the instance; ignores NEURON_RT_VISIBLE_CORES / NEURON_RT_NUM_CORES.
 * Documented as callable before nrt_init: safe while torch-neuronx owns the runtime. */
NRT_STATUS nrt_get_total_nc_count(uint32_t *nc_count);

/* NeuronCores visible to this process (after NEURON_RT_VISIBLE_CORES / NEURON_RT_NUM_CORES).
 * Documented as callable before nrt_init: safe while torch-neuronx owns the runtime. */
NRT_STATUS nrt_get_visible_nc_count(uint32_t *nc_count);

/* Initialises the runtime and reserves the visible NeuronCores for this process. NOT to be called when
 * libtorchneuron runs the models (it initialises the runtime itself; a second owner fails or double-reserves).
 * Used only in "runtime-only" mode (no torch-neuronx), e.g. for a device smoke test. */
NRT_STATUS nrt_init(nrt_framework_type_t framework, const char *fw_version, const char *fal_version);

/* Closes all devices and frees the runtime state. Only after our own nrt_init; never under torch-neuronx. */
void nrt_close(void);

#ifdef __cplusplus
}
#endif

#endif /* SDJVM_NRT_BINDING_H */
