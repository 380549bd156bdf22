/*
 * nrt_binding.h - the subset of the AWS Neuron Runtime (libnrt.so) C API that stable-diffusion-jvm binds with JNA
 * (dev.sdjvm.backend.neuron.Nrt / NeuronRuntime). Written by us from the Neuron Runtime API documentation and the
 * public headers of aws-neuron/aws-neuron-sdk (src/libnrt/include/nrt/{nrt.h,nrt_experimental.h,nrt_status.h,
 * nrt_version.h}); names, types, values and struct layouts are the API's own so that this file can be compiled against
 * (and linked with) a real libnrt.so. It is not a copy of AWS's headers: only what the JVM calls is declared.
 *
 * The simulated runtime in native/ (used by the tests; no Inferentia needed) implements exactly these declarations.
 *
 * The JVM owns the runtime (see docs/neuron.md): nrt_init once per process, nrt_load per model and core, device
 * tensors + tensor sets allocated once per model and core, nrt_tensor_write / nrt_execute / nrt_tensor_read per step,
 * nrt_close after the last model is unloaded. Functions marked "Safe before nrt_init" may also be called before it.
 */
#ifndef SDJVM_NRT_BINDING_H
#define SDJVM_NRT_BINDING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------------ nrt_status.h */
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

/* The runtime's text for a status (static storage). Not in every runtime release: the JVM falls back to its own table. */
const char *nrt_get_status_as_str(NRT_STATUS status);

/* ----------------------------------------------------------------------------------------------- nrt_version.h */
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

/* Safe before nrt_init. size = sizeof(nrt_version_t). */
NRT_STATUS nrt_get_version(nrt_version_t *ver, size_t size);

/* ------------------------------------------------------------------------------------------------------- nrt.h */
typedef struct nrt_model nrt_model_t;
typedef struct nrt_tensor nrt_tensor_t;
typedef void nrt_tensor_set_t;

typedef enum {
    NRT_TENSOR_PLACEMENT_DEVICE,
    NRT_TENSOR_PLACEMENT_HOST,
    NRT_TENSOR_PLACEMENT_VIRTUAL
} nrt_tensor_placement_t;

typedef enum {
    NRT_FRAMEWORK_TYPE_INVALID = 0,
    NRT_FRAMEWORK_TYPE_NO_FW = 1,
    NRT_FRAMEWORK_TYPE_TENSORFLOW,
    NRT_FRAMEWORK_TYPE_PYTORCH,
    NRT_FRAMEWORK_TYPE_MXNET,
    NRT_FRAMEWORK_TYPE_PRECHECK
} nrt_framework_type_t;

/*
 * Tensor dtypes as reported by nrt_get_model_tensor_info. Neuron SDK 2.28 moved nrt_dtype_t from nrt_experimental.h to
 * nrt.h and RENUMBERED it; both numberings are in use by deployed runtimes. The JVM never decides which tensor is which
 * by dtype: it matches tensors by size and shape and uses the dtype only to tell bf16 from fp16 (2-byte floats), which
 * both numberings allow unambiguously for a floating-point tensor (see NrtDType.java).
 */
typedef enum nrt_dtype {            /* SDK 2.28 and later (nrt.h) */
    NRT_DTYPE_UNKNOWN = 0x0,
    NRT_DTYPE_INVALID = 0x0,
    NRT_DTYPE_UINT64 = 0x1,
    NRT_DTYPE_INT8 = 0x2,
    NRT_DTYPE_UINT8 = 0x3,
    NRT_DTYPE_INT16 = 0x4,
    NRT_DTYPE_UINT16 = 0x5,
    NRT_DTYPE_BFLOAT16 = 0x6,
    NRT_DTYPE_FLOAT16 = 0x7,
    NRT_DTYPE_INT32 = 0x8,
    NRT_DTYPE_UINT32 = 0x9,
    NRT_DTYPE_FLOAT32 = 0xA,
    NRT_DTYPE_FP32R = 0xB,
    NRT_DTYPE_INT64 = 0xC,
    NRT_DTYPE_FP8_E3 = 0xD,
    NRT_DTYPE_FP8_E4 = 0xE,
    NRT_DTYPE_FP8_E5 = 0xF
} nrt_dtype_t;

typedef enum {                       /* before SDK 2.28 (nrt_experimental.h): same field, other values */
    NRT_LEGACY_DTYPE_UNKNOWN = 0,
    NRT_LEGACY_DTYPE_FLOAT32,
    NRT_LEGACY_DTYPE_FLOAT16,
    NRT_LEGACY_DTYPE_BFLOAT16,
    NRT_LEGACY_DTYPE_INT8,
    NRT_LEGACY_DTYPE_UINT8,
    NRT_LEGACY_DTYPE_INT16,
    NRT_LEGACY_DTYPE_UINT16,
    NRT_LEGACY_DTYPE_INT32,
    NRT_LEGACY_DTYPE_UINT32,
    NRT_LEGACY_DTYPE_INT64,
    NRT_LEGACY_DTYPE_UINT64
} nrt_legacy_dtype_t;

/* Initialises the runtime and reserves the visible NeuronCores (NEURON_RT_VISIBLE_CORES) for this process.
 * Once per process, framework NRT_FRAMEWORK_TYPE_NO_FW, fw_version "" and fal_version "". */
NRT_STATUS nrt_init(nrt_framework_type_t framework, const char *fw_version, const char *fal_version);

/* Closes all devices and frees the runtime state. After the last nrt_unload. */
void nrt_close(void);

/* Loads a NEFF (header + tarball) onto VNC `vnc` (-1: the runtime picks the first free one). vnc_count: before SDK
 * 2.28 the number of VNCs to use (start_vnc, vnc_count), -1 letting the runtime decide; from 2.28 deprecated and must
 * be -1. The JVM always passes -1. */
NRT_STATUS nrt_load(const void *neff_bytes, size_t size, int32_t vnc, int32_t vnc_count, nrt_model_t **model);

/* Unloads a model and frees its device and host resources. */
NRT_STATUS nrt_unload(nrt_model_t *model);

/* NeuronCores present on the instance (ignores NEURON_RT_VISIBLE_CORES). Safe before nrt_init. */
NRT_STATUS nrt_get_total_nc_count(uint32_t *nc_count);

/* NeuronCores visible to this process (after NEURON_RT_VISIBLE_CORES / NEURON_RT_NUM_CORES). Safe before nrt_init. */
NRT_STATUS nrt_get_visible_nc_count(uint32_t *nc_count);

/* Tensor sets: named tensors passed to nrt_execute. A tensor must outlive the sets it is added to. */
NRT_STATUS nrt_allocate_tensor_set(nrt_tensor_set_t **result);
void nrt_destroy_tensor_set(nrt_tensor_set_t **tensor_set);
NRT_STATUS nrt_add_tensor_to_tensor_set(nrt_tensor_set_t *tensor_set, const char *tensor_name, nrt_tensor_t *tensor);

/* Runs a loaded model: reads the input set, writes the output set (names = the NEFF's tensor names). Blocking. */
NRT_STATUS nrt_execute(nrt_model_t *model, const nrt_tensor_set_t *input_set, nrt_tensor_set_t *output_set);

/* Tensors: placement DEVICE on VNC `vnc` (the model's core), or HOST with vnc -1. */
NRT_STATUS nrt_tensor_allocate(nrt_tensor_placement_t tensor_placement, int vnc, size_t size, const char *name,
                               nrt_tensor_t **tensor);
void nrt_tensor_free(nrt_tensor_t **tensor);
NRT_STATUS nrt_tensor_read(const nrt_tensor_t *tensor, void *buf, size_t offset, size_t size);
NRT_STATUS nrt_tensor_write(nrt_tensor_t *tensor, const void *buf, size_t offset, size_t size);
size_t nrt_tensor_get_size(const nrt_tensor_t *tensor);

/* ------------------------------------------------------------------------------------------ nrt_experimental.h */
typedef enum nrt_tensor_usage {
    NRT_TENSOR_USAGE_INPUT = 0,
    NRT_TENSOR_USAGE_OUTPUT
} nrt_tensor_usage_t;

#define NRT_TENSOR_NAME_MAX 256

/* x86_64 / aarch64 layout: name 0, usage 256, size 264, dtype 272, shape 280, ndim 288; sizeof 296. */
typedef struct nrt_tensor_info {
    char name[NRT_TENSOR_NAME_MAX];
    nrt_tensor_usage_t usage;
    size_t size;                     /* bytes */
    nrt_dtype_t dtype;               /* either numbering, see above */
    uint32_t *shape;
    uint32_t ndim;
} nrt_tensor_info_t;

typedef struct nrt_tensor_info_array {
    uint64_t tensor_count;
    nrt_tensor_info_t tensor_array[];
} nrt_tensor_info_array_t;

/* Input/output tensors of a loaded model; free with nrt_free_model_tensor_info. */
NRT_STATUS nrt_get_model_tensor_info(nrt_model_t *model, nrt_tensor_info_array_t **tensor_info);
NRT_STATUS nrt_free_model_tensor_info(nrt_tensor_info_array_t *tensor_info);

/* ------------------------------------------------------------------------------------------------- NEFF header */
/* A NEFF file is this 1024-byte header followed by a tarball of data_size bytes
 * (aws-neuron-sdk: neuron-runtime/explore/work-with-neff-files.rst). Little-endian. */
typedef struct neff_header {
    uint64_t pkg_version;
    uint64_t header_size;            /* 1024 */
    uint64_t data_size;              /* bytes of the tarball that follows */
    uint64_t neff_version_major;
    uint64_t neff_version_minor;
    uint8_t neff_build_version[128];
    uint32_t num_tpb;
    uint8_t hash[32];
    uint8_t uuid[16];
    char name[256];
    uint32_t requested_tpb_count;
    uint8_t tpb_per_node[64];
    uint64_t feature_bits;
    uint32_t lnc_size;
    uint8_t pad[468];
} neff_header_t;                     /* sizeof == 1024 */

#ifdef __cplusplus
}
#endif

#endif /* SDJVM_NRT_BINDING_H */
