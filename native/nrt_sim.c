/*
 * nrt_sim.c - a simulated AWS Neuron runtime (libnrt.so) for tests on machines without Inferentia.
 *
 * It implements the libnrt subset declared in include/nrt_binding.h with the documented semantics (Neuron Runtime
 * API docs, aws-neuron-sdk neuron-runtime/guides/nrt-developer-guide.rst): nrt_init/nrt_close, NeuronCore
 * visibility (NEURON_RT_VISIBLE_CORES / NEURON_RT_NUM_CORES), NEFF loading onto a VNC, tensors tagged with their
 * VNC, tensor sets, name/size-checked nrt_execute, tensor info. A NEFF here is a real NEFF container (1024-byte
 * neff_header_t + tar) whose tar holds `program.nrtsim`: a text program naming one of a few fixed functions and the
 * tensors (see native/README.md). Compute is float32, one operation at a time in the documented order (build with
 * -ffp-contract=off), so CPU TorchScript twins reproduce the outputs bit for bit.
 *
 * Threading: one mutex guards all bookkeeping; the compute of nrt_execute runs outside it, so executions of
 * different models (or of the same model) run concurrently. Objects in use by a running execution are pinned: a
 * concurrent free/unload/destroy/close waits for the execution to finish.
 *
 * Not simulated: device timing, HBM capacity, multi-process NeuronCore locking, async execution, collectives,
 * model replication over vnc_count > 1.
 */
#define _POSIX_C_SOURCE 200809L

#include "nrt_binding.h"
#include "nrt_sim.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "nrt-sim keeps tensors in host byte order and is written for little-endian hosts (x86_64, aarch64)"
#endif

_Static_assert(sizeof(neff_header_t) == 1024, "neff_header_t must be 1024 bytes");
_Static_assert(sizeof(nrtsim_stats_t) == NRTSIM_STATS_COUNT * sizeof(int64_t), "nrtsim_stats_t must be int64s only");
_Static_assert(sizeof(float) == 4, "float must be IEEE binary32");
#if defined(__LP64__)
_Static_assert(sizeof(nrt_tensor_info_t) == 296, "nrt_tensor_info_t layout (include/nrt_binding.h)");
#endif

#define SIM_VERSION_DEFAULT "2.99.0.0"
#define SIM_MAX_CORES 64
#define SIM_MAX_DIMS 8
#define SIM_MAX_TENSORS 64
#define SIM_MAX_PROGRAM (1u << 20)
#define SIM_MAX_DELAY_US 60000000ull
#define SIM_HOST_TENSOR_MAX (4u << 20) /* docs: NRT_TENSOR_PLACEMENT_HOST tensors cannot be larger than 4MB */
#define SIM_QUARANTINE 16384          /* freed handles kept unreused so stale pointers are recognised */

/* ------------------------------------------------------------------------------------------------------ logging */

static void sim_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void sim_log(const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(stderr, "nrt-sim: %s\n", buf);
    fflush(stderr);
}

/* ------------------------------------------------------------------------------------------------------- dtypes */

typedef enum {
    DT_F32, DT_BF16, DT_F16, DT_I64, DT_I32, DT_I16, DT_I8, DT_U8, DT_U16, DT_U32, DT_U64, DT_COUNT
} sim_dtype;

static const struct {
    const char *name;
    size_t size;
    int is_float;
    int current; /* nrt_dtype_t (SDK 2.28+) */
    int legacy;  /* nrt_legacy_dtype_t (SDK < 2.28) */
} DT[DT_COUNT] = {
    [DT_F32] = {"float32", 4, 1, NRT_DTYPE_FLOAT32, NRT_LEGACY_DTYPE_FLOAT32},
    [DT_BF16] = {"bfloat16", 2, 1, NRT_DTYPE_BFLOAT16, NRT_LEGACY_DTYPE_BFLOAT16},
    [DT_F16] = {"float16", 2, 1, NRT_DTYPE_FLOAT16, NRT_LEGACY_DTYPE_FLOAT16},
    [DT_I64] = {"int64", 8, 0, NRT_DTYPE_INT64, NRT_LEGACY_DTYPE_INT64},
    [DT_I32] = {"int32", 4, 0, NRT_DTYPE_INT32, NRT_LEGACY_DTYPE_INT32},
    [DT_I16] = {"int16", 2, 0, NRT_DTYPE_INT16, NRT_LEGACY_DTYPE_INT16},
    [DT_I8] = {"int8", 1, 0, NRT_DTYPE_INT8, NRT_LEGACY_DTYPE_INT8},
    [DT_U8] = {"uint8", 1, 0, NRT_DTYPE_UINT8, NRT_LEGACY_DTYPE_UINT8},
    [DT_U16] = {"uint16", 2, 0, NRT_DTYPE_UINT16, NRT_LEGACY_DTYPE_UINT16},
    [DT_U32] = {"uint32", 4, 0, NRT_DTYPE_UINT32, NRT_LEGACY_DTYPE_UINT32},
    [DT_U64] = {"uint64", 8, 0, NRT_DTYPE_UINT64, NRT_LEGACY_DTYPE_UINT64},
};

static int dtype_parse(const char *s) {
    for (int i = 0; i < DT_COUNT; i++) {
        if (strcmp(s, DT[i].name) == 0) {
            return i;
        }
    }
    return -1;
}

/* Bit-exact conversions. bf16: round to nearest even; every NaN becomes 0xFFFF, which is what torch's contiguous
 * float->bfloat16 conversion (x.to(torch.bfloat16), AVX2/AVX-512 kernels) produces - measured with torch 1.13 on
 * x86_64, the same rule as Bf16.java's bulk methods (c10::BFloat16's scalar constructor gives 0x7FC0 instead).
 * The one exception, measured too: torch converts float16 -> bfloat16 with the scalar rule, so echo does the same
 * for that pair (f32_to_bf16_scalar).
 * fp16: IEEE binary16 round to nearest even incl. subnormals and overflow to inf; NaN becomes sign|0x7E00 (torch).
 * fp16->f32 quiets NaNs keeping the payload (F16C, as torch). */
static inline uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static inline float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline uint16_t f32_to_bf16(float f) {
    uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) {
        return 0xffffu;
    }
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

static inline uint16_t f32_to_bf16_scalar(float f) {
    return (f32_bits(f) & 0x7fffffffu) > 0x7f800000u ? (uint16_t)0x7fc0u : f32_to_bf16(f);
}

static inline float bf16_to_f32(uint16_t h) {
    return bits_f32((uint32_t)h << 16);
}

static inline uint16_t f32_to_f16(float f) {
    uint32_t u = f32_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) {
        return (uint16_t)(sign | 0x7e00u);
    }
    if (a >= 0x477ff000u) { /* >= 65520 (incl. inf): rounds to inf */
        return (uint16_t)(sign | 0x7c00u);
    }
    if (a >= 0x38800000u) { /* >= 2^-14: normal */
        uint32_t mant = a & 0x7fffffu;
        uint32_t h = (((a >> 23) - 112u) << 10) | (mant >> 13);
        uint32_t rem = mant & 0x1fffu;
        if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) {
            h++; /* a carry into the exponent is the correct result */
        }
        return (uint16_t)(sign | h);
    }
    if (a <= 0x33000000u) { /* <= 2^-25: rounds to zero (2^-25 is a tie to even 0) */
        return sign;
    }
    uint32_t exp = a >> 23;                  /* 102..112 */
    uint32_t mant = (a & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126u - exp;             /* 14..24: value / 2^-24 = mant >> shift */
    uint32_t h = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1u);
    uint32_t half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (h & 1u))) {
        h++;
    }
    return (uint16_t)(sign | h);
}

static inline float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    uint32_t u;
    if (exp == 0x1fu) {
        u = sign | 0x7f800000u | (man ? (0x400000u | (man << 13)) : 0u);
    } else if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else {
            uint32_t e = 113u; /* exponent field of 2^-14 */
            while (!(man & 0x400u)) {
                man <<= 1;
                e--;
            }
            u = sign | (e << 23) | ((man & 0x3ffu) << 13);
        }
    } else {
        u = sign | ((exp + 112u) << 23) | (man << 13);
    }
    return bits_f32(u);
}

static inline int64_t load_i64(int dt, const unsigned char *p, size_t i) {
    switch (dt) {
    case DT_I64: { int64_t v; memcpy(&v, p + 8 * i, 8); return v; }
    case DT_U64: { uint64_t v; memcpy(&v, p + 8 * i, 8); return (int64_t)v; }
    case DT_I32: { int32_t v; memcpy(&v, p + 4 * i, 4); return v; }
    case DT_U32: { uint32_t v; memcpy(&v, p + 4 * i, 4); return v; }
    case DT_I16: { int16_t v; memcpy(&v, p + 2 * i, 2); return v; }
    case DT_U16: { uint16_t v; memcpy(&v, p + 2 * i, 2); return v; }
    case DT_I8: return (int8_t)p[i];
    case DT_U8: return p[i];
    default: return 0;
    }
}

static inline void store_i64(int dt, unsigned char *p, size_t i, int64_t v) {
    /* two's complement truncation, as torch's integer .to() */
    uint64_t u = (uint64_t)v;
    switch (dt) {
    case DT_I64: case DT_U64: memcpy(p + 8 * i, &u, 8); break;
    case DT_I32: case DT_U32: { uint32_t w = (uint32_t)u; memcpy(p + 4 * i, &w, 4); break; }
    case DT_I16: case DT_U16: { uint16_t w = (uint16_t)u; memcpy(p + 2 * i, &w, 2); break; }
    case DT_I8: case DT_U8: p[i] = (unsigned char)u; break;
    default: break;
    }
}

static inline float load_f32(int dt, const unsigned char *p, size_t i) {
    switch (dt) {
    case DT_F32: { float v; memcpy(&v, p + 4 * i, 4); return v; }
    case DT_BF16: { uint16_t v; memcpy(&v, p + 2 * i, 2); return bf16_to_f32(v); }
    case DT_F16: { uint16_t v; memcpy(&v, p + 2 * i, 2); return f16_to_f32(v); }
    default: return (float)load_i64(dt, p, i);
    }
}

static inline void store_f32(int dt, unsigned char *p, size_t i, float v) {
    switch (dt) {
    case DT_F32: memcpy(p + 4 * i, &v, 4); break;
    case DT_BF16: { uint16_t w = f32_to_bf16(v); memcpy(p + 2 * i, &w, 2); break; }
    case DT_F16: { uint16_t w = f32_to_f16(v); memcpy(p + 2 * i, &w, 2); break; }
    default: break; /* load-time checks keep float results out of integer tensors */
    }
}

/* -------------------------------------------------------------------------------------------------- objects */

typedef struct link {
    struct link *prev, *next;
} link_t;

static void list_init(link_t *head) {
    head->prev = head->next = head;
}

static void list_push(link_t *head, link_t *n) {
    n->prev = head->prev;
    n->next = head;
    head->prev->next = n;
    head->prev = n;
}

static void list_del(link_t *n) {
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = NULL;
}

/* Membership by address only: a pointer that is not in the list is never dereferenced. */
static int list_has(const link_t *head, const void *p) {
    if (p == NULL) {
        return 0;
    }
    for (const link_t *n = head->next; n != head; n = n->next) {
        if ((const void *)n == p) {
            return 1;
        }
    }
    return 0;
}

/* FN_VAE_DECODE: post_quant_conv then vae_decoder in one program, as optimum-neuron's vae_decoder (vae.decode) */
typedef enum { FN_ECHO, FN_TEXT_ENCODER, FN_UNET, FN_POST_QUANT_CONV, FN_VAE_DECODER, FN_VAE_ENCODER,
               FN_VAE_DECODE } sim_fn;

static const char *const FN_NAMES[] = {"echo", "text_encoder", "unet", "post_quant_conv", "vae_decoder",
                                       "vae_encoder", "vae_decode"};

typedef struct {
    char name[NRT_TENSOR_NAME_MAX];
    int usage; /* NRT_TENSOR_USAGE_INPUT / _OUTPUT */
    int dt;
    uint32_t ndim;
    uint32_t shape[SIM_MAX_DIMS];
    uint64_t numel;
    size_t bytes;
} tdecl_t;

typedef struct {
    int fn;
    int ntensors;
    tdecl_t t[SIM_MAX_TENSORS]; /* file order */
    int nin, nout;
    int in_idx[SIM_MAX_TENSORS];  /* declaration order of the inputs */
    int out_idx[SIM_MAX_TENSORS]; /* declaration order of the outputs */
    uint64_t delay_us;
    /* fn-specific roles (indices into t) */
    int r_sample, r_timestep, r_ehs; /* unet */
    int r_text_embeds, r_time_ids;   /* SDXL unet: the first and the second 2-D input, or -1 */
    int r_timestep_cond;             /* LCM unet: its one 2-D input (the guidance embedding), or -1 */
} program_t;

struct nrt_model {
    link_t link; /* first member: the handle is the link address */
    int vnc;     /* relative to the visible set */
    int busy;    /* executions in flight */
    char name[257];
    program_t *prog; /* freed at unload; the small handle struct is retired */
};

struct nrt_tensor {
    link_t link;
    int placement;
    int vnc;
    int busy; /* executions / copies in flight */
    size_t size;
    unsigned char *data;
    char name[NRT_TENSOR_NAME_MAX];
};

typedef struct {
    char *name;
    nrt_tensor_t *tensor;
} set_entry_t;

typedef struct {
    link_t link;
    int busy;
    int n, cap;
    set_entry_t *e;
} sim_set_t;

typedef struct {
    link_t link;
    nrt_tensor_info_array_t *arr;
} info_node_t;

typedef struct inject_rule {
    struct inject_rule *next;
    char call[64];
    int skip;
    int count; /* < 0: forever */
    int status;
    long seen;
} inject_rule_t;

/* ---------------------------------------------------------------------------------------------- global state */

enum { ST_NEVER, ST_INIT, ST_CLOSED };

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv;         /* an execution or copy finished */
static pthread_cond_t g_barrier_cv; /* barrier generation changed */

static int g_state = ST_NEVER;
static int g_total_cores;
static int g_visible_n;
static int g_visible[SIM_MAX_CORES]; /* physical index of each relative VNC */
static link_t g_models, g_tensors, g_sets, g_infos;
static int g_busy_ops; /* executions + copies in flight */
static int g_inflight;
static int g_inflight_vnc[SIM_MAX_CORES];

static int g_legacy_dtypes;
static int g_bare_info; /* nrt_get_model_tensor_info reports no shapes and dtype 0 (NRT_SIM_BARE_TENSOR_INFO) */
static long g_delay_us;
static int g_barrier_parties;
static int g_barrier_timeout_ms = 10000;
static int g_barrier_waiting;
static unsigned long g_barrier_gen;
static inject_rule_t *g_rules;

static void *g_quarantine[SIM_QUARANTINE];
static size_t g_quarantine_pos;

static nrtsim_stats_t g_st;

static void retire(void *p) {
    /* keep the freed handle's address out of malloc's reach for a while, so a stale handle stays unknown */
    void *old = g_quarantine[g_quarantine_pos];
    g_quarantine[g_quarantine_pos] = p;
    g_quarantine_pos = (g_quarantine_pos + 1) % SIM_QUARANTINE;
    free(old);
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int env_flag(const char *name) {
    const char *v = getenv(name);
    if (v == NULL) {
        return 0;
    }
    return strcmp(v, "1") == 0 || strcmp(v, "true") == 0 || strcmp(v, "TRUE") == 0 || strcmp(v, "True") == 0
           || strcmp(v, "yes") == 0;
}

/* Parses a decimal integer in [lo, hi] occupying the whole string (surrounding blanks allowed). */
static int parse_int(const char *s, long lo, long hi, long *out) {
    if (s == NULL) {
        return 0;
    }
    while (*s == ' ' || *s == '\t') {
        s++;
    }
    if (*s == '\0') {
        return 0;
    }
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s) {
        return 0;
    }
    while (*end == ' ' || *end == '\t') {
        end++;
    }
    if (*end != '\0' || v < lo || v > hi) {
        return 0;
    }
    *out = v;
    return 1;
}

/* ------------------------------------------------------------------------------------------------- injection */

static const char *const INJECTABLE[] = {
    "nrt_init", "nrt_load", "nrt_unload", "nrt_execute", "nrt_tensor_allocate", "nrt_tensor_read",
    "nrt_tensor_write", "nrt_allocate_tensor_set", "nrt_add_tensor_to_tensor_set", "nrt_get_model_tensor_info",
    "nrt_get_version", "nrt_get_total_nc_count", "nrt_get_visible_nc_count", "nrt_get_total_vnc_count",
    "nrt_get_visible_vnc_count", NULL};

static int inject_add_locked(const char *call, int skip, int count, int status) {
    int known = 0;
    for (int i = 0; call != NULL && INJECTABLE[i] != NULL; i++) {
        known |= strcmp(call, INJECTABLE[i]) == 0;
    }
    if (!known) {
        sim_log("nrtsim_inject: '%s' is not an injectable call", call ? call : "(null)");
        return -1;
    }
    if (skip < 0 || count == 0 || status == NRT_SUCCESS) {
        sim_log("nrtsim_inject: %s: need skip >= 0, count != 0 and a status other than NRT_SUCCESS "
                "(got skip %d count %d status %d)", call, skip, count, status);
        return -1;
    }
    inject_rule_t *r = calloc(1, sizeof *r);
    if (r == NULL) {
        return -1;
    }
    snprintf(r->call, sizeof r->call, "%s", call);
    r->skip = skip;
    r->count = count;
    r->status = status;
    inject_rule_t **pp = &g_rules;
    while (*pp != NULL) {
        pp = &(*pp)->next;
    }
    *pp = r;
    return 0;
}

/* Called with g_mu held at the start of an injectable call: the injected status, or NRT_SUCCESS. */
static NRT_STATUS injected_locked(const char *call) {
    NRT_STATUS st = NRT_SUCCESS;
    for (inject_rule_t **pp = &g_rules; *pp != NULL;) {
        inject_rule_t *r = *pp;
        if (strcmp(r->call, call) != 0) {
            pp = &r->next;
            continue;
        }
        long idx = r->seen++;
        int fires = idx >= r->skip && (r->count < 0 || idx < (long)r->skip + r->count);
        if (fires && st == NRT_SUCCESS) {
            st = (NRT_STATUS)r->status;
        }
        if (r->count >= 0 && r->seen >= (long)r->skip + r->count) {
            *pp = r->next; /* used up */
            free(r);
        } else {
            pp = &r->next;
        }
    }
    if (st != NRT_SUCCESS) {
        g_st.injected_failures++;
        sim_log("%s: injected status %d", call, (int)st);
    }
    return st;
}

static void inject_from_env(void) {
    const char *v = getenv("NRT_SIM_INJECT");
    if (v == NULL || *v == '\0') {
        return;
    }
    char *copy = strdup(v);
    if (copy == NULL) {
        return;
    }
    char *save = NULL;
    for (char *item = strtok_r(copy, ";", &save); item != NULL; item = strtok_r(NULL, ";", &save)) {
        char call[64];
        int skip, count, status;
        char tail;
        if (sscanf(item, " %63[^:]:%d:%d:%d %c", call, &skip, &count, &status, &tail) != 4) {
            sim_log("NRT_SIM_INJECT: cannot parse '%s' (expected call:skip:count:status)", item);
            continue;
        }
        inject_add_locked(call, skip, count, status);
    }
    free(copy);
}

/* -------------------------------------------------------------------------------------------- library setup */

static void sim_load(void) __attribute__((constructor));

static void sim_load(void) {
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&g_cv, &ca);
    pthread_cond_init(&g_barrier_cv, &ca);
    pthread_condattr_destroy(&ca);
    list_init(&g_models);
    list_init(&g_tensors);
    list_init(&g_sets);
    list_init(&g_infos);
    g_legacy_dtypes = env_flag("NRT_SIM_LEGACY_DTYPES");
    g_bare_info = env_flag("NRT_SIM_BARE_TENSOR_INFO");
    long v;
    const char *s = getenv("NRT_SIM_EXEC_DELAY_US");
    if (s != NULL) {
        if (parse_int(s, 0, (long)SIM_MAX_DELAY_US, &v)) {
            g_delay_us = v;
        } else {
            sim_log("NRT_SIM_EXEC_DELAY_US='%s' ignored (expected 0..%llu)", s, SIM_MAX_DELAY_US);
        }
    }
    s = getenv("NRT_SIM_EXEC_BARRIER");
    if (s != NULL) {
        int parties, timeout;
        char tail;
        int n = sscanf(s, " %d:%d %c", &parties, &timeout, &tail);
        if (n == 2 || (n == 1 && sscanf(s, " %d %c", &parties, &tail) == 1)) {
            g_barrier_parties = parties > 1 ? parties : 0;
            g_barrier_timeout_ms = (n == 2 && timeout > 0) ? timeout : 10000;
        } else {
            sim_log("NRT_SIM_EXEC_BARRIER='%s' ignored (expected parties[:timeout_ms])", s);
        }
    }
    inject_from_env();
}

/* ------------------------------------------------------------------------------------------------ NeuronCores */

static int total_cores(int *out) {
    const char *s = getenv("NRT_SIM_TOTAL_CORES");
    long v = 2;
    if (s != NULL && !parse_int(s, 1, SIM_MAX_CORES, &v)) {
        sim_log("NRT_SIM_TOTAL_CORES='%s' is not a core count in 1..%d", s, SIM_MAX_CORES);
        return 0;
    }
    *out = (int)v;
    return 1;
}

/* NEURON_RT_VISIBLE_CORES: comma-separated indices and inclusive ranges ("1", "0-1", "0,2", "0-1,4-5"), in
 * increasing order without repeats (docs: "indices need to be provided in consecutive increasing order"); each
 * index < total. Takes precedence over NEURON_RT_NUM_CORES (0 or unset = all cores; n = the first n cores). */
static int visible_cores(int total, int *vis, int *n, const char *caller) {
    const char *spec = getenv("NEURON_RT_VISIBLE_CORES");
    if (spec != NULL && *spec != '\0') {
        int count = 0;
        long last = -1;
        const char *p = spec;
        for (;;) {
            char item[64];
            size_t len = strcspn(p, ",");
            if (len == 0 || len >= sizeof item) {
                goto bad;
            }
            memcpy(item, p, len);
            item[len] = '\0';
            long a, b;
            char *dash = strchr(item, '-');
            if (dash != NULL) {
                *dash = '\0';
                if (!parse_int(item, 0, SIM_MAX_CORES - 1, &a) || !parse_int(dash + 1, 0, SIM_MAX_CORES - 1, &b)
                    || b < a) {
                    goto bad;
                }
            } else {
                if (!parse_int(item, 0, SIM_MAX_CORES - 1, &a)) {
                    goto bad;
                }
                b = a;
            }
            if (a <= last) {
                sim_log("%s: NEURON_RT_VISIBLE_CORES='%s': indices must be increasing without repeats", caller,
                        spec);
                return 0;
            }
            if (b >= total) {
                sim_log("%s: NEURON_RT_VISIBLE_CORES='%s': NeuronCore %ld does not exist (%d NeuronCores, 0..%d)",
                        caller, spec, b, total, total - 1);
                return 0;
            }
            for (long c = a; c <= b; c++) {
                vis[count++] = (int)c;
            }
            last = b;
            p += len;
            if (*p == '\0') {
                break;
            }
            p++; /* ',' */
        }
        *n = count;
        return 1;
    bad:
        sim_log("%s: NEURON_RT_VISIBLE_CORES='%s' is not a list of NeuronCore indices and ranges like 0,2 or 0-1,4-5",
                caller, spec);
        return 0;
    }
    const char *num = getenv("NEURON_RT_NUM_CORES");
    long k = 0;
    if (num != NULL && *num != '\0') {
        if (!parse_int(num, 0, LONG_MAX, &k)) {
            sim_log("%s: NEURON_RT_NUM_CORES='%s' is not a number of NeuronCores", caller, num);
            return 0;
        }
        if (k > total) {
            sim_log("%s: NEURON_RT_NUM_CORES=%ld but only %d NeuronCores are present", caller, k, total);
            return 0;
        }
    }
    if (k == 0) {
        k = total;
    }
    for (int i = 0; i < k; i++) {
        vis[i] = i;
    }
    *n = (int)k;
    return 1;
}

/* ------------------------------------------------------------------------------------------------- status text */

const char *nrt_get_status_as_str(NRT_STATUS status) {
    switch (status) {
    case NRT_SUCCESS: return "NRT_SUCCESS";
    case NRT_FAILURE: return "NRT_FAILURE";
    case NRT_INVALID: return "NRT_INVALID";
    case NRT_INVALID_HANDLE: return "NRT_INVALID_HANDLE";
    case NRT_RESOURCE: return "NRT_RESOURCE";
    case NRT_TIMEOUT: return "NRT_TIMEOUT";
    case NRT_HW_ERROR: return "NRT_HW_ERROR";
    case NRT_QUEUE_FULL: return "NRT_QUEUE_FULL";
    case NRT_LOAD_NOT_ENOUGH_NC: return "NRT_LOAD_NOT_ENOUGH_NC";
    case NRT_UNSUPPORTED_NEFF_VERSION: return "NRT_UNSUPPORTED_NEFF_VERSION";
    case NRT_FAIL_HOST_MEM_ALLOC: return "NRT_FAIL_HOST_MEM_ALLOC";
    case NRT_UNINITIALIZED: return "NRT_UNINITIALIZED";
    case NRT_CLOSED: return "NRT_CLOSED";
    case NRT_QUEUE_EMPTY: return "NRT_QUEUE_EMPTY";
    case NRT_EXEC_UNIT_UNRECOVERABLE: return "NRT_EXEC_UNIT_UNRECOVERABLE";
    case NRT_EXEC_BAD_INPUT: return "NRT_EXEC_BAD_INPUT";
    case NRT_EXEC_COMPLETED_WITH_NUM_ERR: return "NRT_EXEC_COMPLETED_WITH_NUM_ERR";
    case NRT_EXEC_COMPLETED_WITH_ERR: return "NRT_EXEC_COMPLETED_WITH_ERR";
    case NRT_EXEC_NC_BUSY: return "NRT_EXEC_NC_BUSY";
    case NRT_EXEC_OOB: return "NRT_EXEC_OOB";
    case NRT_COLL_PENDING: return "NRT_COLL_PENDING";
    case NRT_EXEC_HW_ERR_COLLECTIVES: return "NRT_EXEC_HW_ERR_COLLECTIVES";
    case NRT_EXEC_HW_ERR_HBM_UE: return "NRT_EXEC_HW_ERR_HBM_UE";
    case NRT_EXEC_HW_ERR_NC_UE: return "NRT_EXEC_HW_ERR_NC_UE";
    case NRT_EXEC_HW_ERR_DMA_ABORT: return "NRT_EXEC_HW_ERR_DMA_ABORT";
    case NRT_EXEC_SW_NQ_OVERFLOW: return "NRT_EXEC_SW_NQ_OVERFLOW";
    case NRT_EXEC_HW_ERR_REPAIRABLE_HBM_UE: return "NRT_EXEC_HW_ERR_REPAIRABLE_HBM_UE";
    case NRT_NETWORK_PROXY_FAILURE: return "NRT_NETWORK_PROXY_FAILURE";
    }
    return "NRT_STATUS_UNKNOWN";
}

/* Bookkeeping for a returned status (g_mu held). */
static NRT_STATUS fail_locked(NRT_STATUS st) {
    if (st != NRT_SUCCESS) {
        g_st.failed_calls++;
    }
    return st;
}

static NRT_STATUS state_status_locked(const char *caller) {
    if (g_state == ST_INIT) {
        return NRT_SUCCESS;
    }
    if (g_state == ST_CLOSED) {
        sim_log("%s: the runtime was closed (nrt_close); call nrt_init again first", caller);
        return NRT_CLOSED;
    }
    sim_log("%s: the runtime is not initialised (call nrt_init first)", caller);
    return NRT_UNINITIALIZED;
}

/* -------------------------------------------------------------------------------------------- version, cores */

NRT_STATUS nrt_get_version(nrt_version_t *ver, size_t size) {
    pthread_mutex_lock(&g_mu);
    NRT_STATUS st = injected_locked("nrt_get_version");
    pthread_mutex_unlock(&g_mu);
    if (st != NRT_SUCCESS) {
        goto out;
    }
    if (ver == NULL || size == 0) {
        sim_log("nrt_get_version: need a nrt_version_t and its size");
        st = NRT_INVALID;
        goto out;
    }
    nrt_version_t v;
    memset(&v, 0, sizeof v);
    const char *s = getenv("NRT_SIM_VERSION");
    unsigned long long part[4] = {0, 0, 0, 0};
    int n = 0;
    if (s != NULL) {
        char tail;
        n = sscanf(s, "%llu.%llu.%llu.%llu%c", &part[0], &part[1], &part[2], &part[3], &tail);
        if (n < 1 || n > 4) {
            sim_log("NRT_SIM_VERSION='%s' is not a version like 2.27.1.0; using %s", s, SIM_VERSION_DEFAULT);
            n = 0;
        }
    }
    if (n == 0) {
        sscanf(SIM_VERSION_DEFAULT, "%llu.%llu.%llu.%llu", &part[0], &part[1], &part[2], &part[3]);
    }
    v.rt_major = part[0];
    v.rt_minor = part[1];
    v.rt_patch = part[2];
    v.rt_maintenance = part[3];
    snprintf(v.rt_detail, sizeof v.rt_detail, "nrt-sim");
    snprintf(v.git_hash, sizeof v.git_hash, "nrt-sim");
    /* docs: "The size argument allows for backwards compatibility": fill at most `size` bytes */
    memcpy(ver, &v, size < sizeof v ? size : sizeof v);
out:
    if (st != NRT_SUCCESS) {
        pthread_mutex_lock(&g_mu);
        fail_locked(st);
        pthread_mutex_unlock(&g_mu);
    }
    return st;
}

static NRT_STATUS core_count(uint32_t *out, int visible, const char *caller) {
    pthread_mutex_lock(&g_mu);
    NRT_STATUS st = injected_locked(caller);
    if (st == NRT_SUCCESS && out == NULL) {
        sim_log("%s: nc_count is NULL", caller);
        st = NRT_INVALID;
    }
    if (st == NRT_SUCCESS) {
        if (g_state == ST_INIT) {
            *out = (uint32_t)(visible ? g_visible_n : g_total_cores);
        } else {
            /* before nrt_init (documented as allowed): what nrt_init would reserve now */
            int total, vis[SIM_MAX_CORES], n;
            if (!total_cores(&total) || (visible && !visible_cores(total, vis, &n, caller))) {
                st = NRT_INVALID;
            } else {
                *out = (uint32_t)(visible ? n : total);
            }
        }
    }
    fail_locked(st);
    pthread_mutex_unlock(&g_mu);
    return st;
}

NRT_STATUS nrt_get_total_nc_count(uint32_t *nc_count) {
    return core_count(nc_count, 0, "nrt_get_total_nc_count");
}

NRT_STATUS nrt_get_visible_nc_count(uint32_t *nc_count) {
    return core_count(nc_count, 1, "nrt_get_visible_nc_count");
}

NRT_STATUS nrt_get_total_vnc_count(uint32_t *vnc_count) {
    return core_count(vnc_count, 0, "nrt_get_total_vnc_count");
}

NRT_STATUS nrt_get_visible_vnc_count(uint32_t *vnc_count) {
    return core_count(vnc_count, 1, "nrt_get_visible_vnc_count");
}

/* --------------------------------------------------------------------------------------------- init / close */

NRT_STATUS nrt_init(nrt_framework_type_t framework, const char *fw_version, const char *fal_version) {
    (void)fw_version;
    (void)fal_version;
    pthread_mutex_lock(&g_mu);
    g_st.init_calls++;
    NRT_STATUS st = injected_locked("nrt_init");
    if (st != NRT_SUCCESS) {
        goto out;
    }
    if (g_state == ST_INIT) {
        /* the docs do not define a second nrt_init; the simulator refuses it and keeps the running state */
        sim_log("nrt_init: the runtime is already initialised (call nrt_close before initialising again)");
        st = NRT_INVALID;
        goto out;
    }
    if ((int)framework <= (int)NRT_FRAMEWORK_TYPE_INVALID || (int)framework > (int)NRT_FRAMEWORK_TYPE_PRECHECK) {
        sim_log("nrt_init: framework %d is not a valid nrt_framework_type_t (NRT_FRAMEWORK_TYPE_NO_FW = 1 for "
                "framework-less use)", (int)framework);
        st = NRT_INVALID;
        goto out;
    }
    int total, n, vis[SIM_MAX_CORES];
    if (!total_cores(&total) || !visible_cores(total, vis, &n, "nrt_init")) {
        st = NRT_INVALID;
        goto out;
    }
    g_total_cores = total;
    g_visible_n = n;
    memcpy(g_visible, vis, sizeof vis);
    memset(g_inflight_vnc, 0, sizeof g_inflight_vnc);
    g_state = ST_INIT;
    g_st.initialized = 1;
out:
    fail_locked(st);
    pthread_mutex_unlock(&g_mu);
    return st;
}

static void free_model(struct nrt_model *m) {
    list_del(&m->link);
    free(m->prog);
    m->prog = NULL;
    retire(m);
}

static void free_tensor(nrt_tensor_t *t) {
    list_del(&t->link);
    free(t->data);
    t->data = NULL;
    retire(t);
}

static void free_set(sim_set_t *s) {
    list_del(&s->link);
    for (int i = 0; i < s->n; i++) {
        free(s->e[i].name);
    }
    free(s->e);
    s->e = NULL;
    retire(s);
}

static void free_info_node(info_node_t *in) {
    list_del(&in->link);
    nrt_tensor_info_array_t *a = in->arr;
    for (uint64_t i = 0; i < a->tensor_count; i++) {
        free(a->tensor_array[i].shape);
        a->tensor_array[i].shape = NULL;
    }
    retire(a); /* the array is the handle the application holds */
    free(in);
}

void nrt_close(void) {
    pthread_mutex_lock(&g_mu);
    g_st.close_calls++;
    if (g_state != ST_INIT) {
        sim_log("nrt_close: the runtime is not initialised; nothing to close");
        pthread_mutex_unlock(&g_mu);
        return;
    }
    while (g_busy_ops > 0) { /* let running executions and copies finish */
        pthread_cond_wait(&g_cv, &g_mu);
    }
    int64_t leaked = 0;
    while (g_models.next != &g_models) {
        free_model((struct nrt_model *)g_models.next);
        leaked++;
    }
    while (g_sets.next != &g_sets) {
        free_set((sim_set_t *)g_sets.next);
        leaked++;
    }
    while (g_tensors.next != &g_tensors) {
        free_tensor((nrt_tensor_t *)g_tensors.next);
        leaked++;
    }
    while (g_infos.next != &g_infos) {
        free_info_node((info_node_t *)g_infos.next);
        leaked++;
    }
    if (leaked > 0) {
        sim_log("nrt_close: freed %" PRId64 " objects the application did not release", leaked);
    }
    g_st.leaked_at_close += leaked;
    g_st.live_models = g_st.live_tensors = g_st.live_sets = g_st.live_tensor_infos = 0;
    g_state = ST_CLOSED;
    g_st.initialized = 0;
    pthread_mutex_unlock(&g_mu);
}

/* ------------------------------------------------------------------------------------------------------ SHA-256 */

typedef struct {
    uint32_t h[8];
    uint64_t len;
    unsigned char buf[64];
    size_t n;
} sha256_t;

static const uint32_t SHA_K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

static inline uint32_t rotr(uint32_t x, int n) {
    return (x >> n) | (x << (32 - n));
}

static void sha256_block(sha256_t *s, const unsigned char *p) {
    uint32_t w[64];
    for (int i = 0; i < 16; i++) {
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    }
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = s->h[0], b = s->h[1], c = s->h[2], d = s->h[3], e = s->h[4], f = s->h[5], g = s->h[6],
             h = s->h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + SHA_K[i] + w[i];
        uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        h = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    s->h[0] += a; s->h[1] += b; s->h[2] += c; s->h[3] += d;
    s->h[4] += e; s->h[5] += f; s->h[6] += g; s->h[7] += h;
}

static void sha256(const unsigned char *p, size_t n, unsigned char out[32]) {
    sha256_t s = {{0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19},
                  0, {0}, 0};
    s.len = (uint64_t)n * 8;
    while (n >= 64) {
        sha256_block(&s, p);
        p += 64;
        n -= 64;
    }
    unsigned char last[128];
    memset(last, 0, sizeof last);
    memcpy(last, p, n);
    last[n] = 0x80;
    size_t total = n + 9 <= 64 ? 64 : 128;
    for (int i = 0; i < 8; i++) {
        last[total - 1 - i] = (unsigned char)(s.len >> (8 * i));
    }
    sha256_block(&s, last);
    if (total == 128) {
        sha256_block(&s, last + 64);
    }
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (unsigned char)(s.h[i] >> 24);
        out[4 * i + 1] = (unsigned char)(s.h[i] >> 16);
        out[4 * i + 2] = (unsigned char)(s.h[i] >> 8);
        out[4 * i + 3] = (unsigned char)s.h[i];
    }
}

/* --------------------------------------------------------------------------------------------------- NEFF / tar */

static uint64_t rd64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) {
        v = v << 8 | p[i];
    }
    return v;
}

/* tar numeric field: octal digits (leading blanks, terminated by NUL or blank) or GNU base-256. -1 if invalid. */
static int64_t tar_number(const unsigned char *f, size_t len) {
    if (f[0] & 0x80) {
        if (f[0] != 0x80) {
            return -1; /* negative or too large */
        }
        uint64_t v = 0;
        for (size_t i = 1; i < len; i++) {
            if (v >> 55) {
                return -1;
            }
            v = v << 8 | f[i];
        }
        return v > (uint64_t)INT64_MAX ? -1 : (int64_t)v;
    }
    size_t i = 0;
    while (i < len && f[i] == ' ') {
        i++;
    }
    uint64_t v = 0;
    int digits = 0;
    for (; i < len && f[i] >= '0' && f[i] <= '7'; i++) {
        if (v >> 60) {
            return -1;
        }
        v = v * 8 + (uint64_t)(f[i] - '0');
        digits++;
    }
    if (digits == 0) {
        return -1;
    }
    for (; i < len; i++) {
        if (f[i] != ' ' && f[i] != '\0') {
            return -1;
        }
    }
    return (int64_t)v;
}

static int is_zero_block(const unsigned char *b) {
    for (int i = 0; i < 512; i++) {
        if (b[i]) {
            return 0;
        }
    }
    return 1;
}

/* Finds the program in a POSIX (ustar/pax) or GNU tar. Returns NRT_SUCCESS and sets prog and prog_len, or logs. */
static NRT_STATUS tar_find_program(const unsigned char *d, uint64_t n, const unsigned char **prog, size_t *prog_len) {
    uint64_t off = 0;
    int headers = 0;
    char longname[1024];
    longname[0] = '\0';
    *prog = NULL;
    if (n >= 2 && d[0] == 0x1f && d[1] == 0x8b) {
        sim_log("nrt_load: the NEFF payload is gzip-compressed; the simulator reads plain tar payloads only");
        return NRT_INVALID;
    }
    if (n < 512 || n % 512 != 0) {
        sim_log("nrt_load: the NEFF payload (%" PRIu64 " bytes) is not a tar archive (a multiple of 512 bytes)", n);
        return NRT_INVALID;
    }
    while (off + 512 <= n) {
        const unsigned char *h = d + off;
        if (is_zero_block(h)) {
            break; /* end-of-archive marker */
        }
        int64_t chk = tar_number(h + 148, 8);
        uint64_t usum = 0;
        int64_t ssum = 0;
        for (int i = 0; i < 512; i++) {
            unsigned char c = (i >= 148 && i < 156) ? ' ' : h[i];
            usum += c;
            ssum += (signed char)c;
        }
        if (chk < 0 || ((uint64_t)chk != usum && chk != ssum)) {
            sim_log("nrt_load: invalid NEFF: tar header at offset %" PRIu64 " has a bad checksum", off);
            return NRT_INVALID;
        }
        int posix = memcmp(h + 257, "ustar\0" "00", 8) == 0;
        int gnu = memcmp(h + 257, "ustar  \0", 8) == 0;
        if (!posix && !gnu) {
            sim_log("nrt_load: invalid NEFF: tar header at offset %" PRIu64 " is neither POSIX ustar nor GNU", off);
            return NRT_INVALID;
        }
        int64_t size = tar_number(h + 124, 12);
        if (size < 0) {
            sim_log("nrt_load: invalid NEFF: tar header at offset %" PRIu64 " has a bad size field", off);
            return NRT_INVALID;
        }
        uint64_t body = ((uint64_t)size + 511) / 512 * 512;
        if (body > n - off - 512) {
            sim_log("nrt_load: invalid NEFF: tar member at offset %" PRIu64 " (%" PRId64 " bytes) runs past the "
                    "payload", off, size);
            return NRT_INVALID;
        }
        const unsigned char *data = h + 512;
        char type = (char)h[156];
        headers++;
        if (type == 'L' || type == 'x') {
            /* GNU long name / pax extended header: names the next member */
            if (type == 'L') {
                size_t l = (size_t)size < sizeof longname - 1 ? (size_t)size : sizeof longname - 1;
                memcpy(longname, data, l);
                longname[l] = '\0';
            } else {
                uint64_t p = 0;
                while (p < (uint64_t)size) {
                    uint64_t rl = 0, q = p;
                    while (q < (uint64_t)size && data[q] >= '0' && data[q] <= '9') {
                        rl = rl * 10 + (uint64_t)(data[q] - '0');
                        q++;
                    }
                    if (rl == 0 || q >= (uint64_t)size || data[q] != ' ' || p + rl > (uint64_t)size) {
                        sim_log("nrt_load: invalid NEFF: malformed pax header at offset %" PRIu64, off);
                        return NRT_INVALID;
                    }
                    const char *kv = (const char *)data + q + 1;
                    size_t kvlen = (size_t)(p + rl - (q + 1));
                    if (kvlen > 5 && memcmp(kv, "path=", 5) == 0) {
                        size_t l = kvlen - 6; /* minus "path=" and the trailing newline */
                        if (l > sizeof longname - 1) {
                            l = sizeof longname - 1;
                        }
                        memcpy(longname, kv + 5, l);
                        longname[l] = '\0';
                    }
                    p += rl;
                }
            }
            off += 512 + body;
            continue;
        }
        char name[1024];
        if (longname[0] != '\0') {
            snprintf(name, sizeof name, "%s", longname);
            longname[0] = '\0';
        } else if (posix && h[345] != '\0') {
            snprintf(name, sizeof name, "%.155s/%.100s", (const char *)h + 345, (const char *)h);
        } else {
            snprintf(name, sizeof name, "%.100s", (const char *)h);
        }
        if (type == '0' || type == '\0' || type == '7') {
            const char *base = strrchr(name, '/');
            base = base ? base + 1 : name;
            if (strcmp(base, "program.nrtsim") == 0) {
                if (*prog != NULL) {
                    sim_log("nrt_load: invalid NEFF: more than one program.nrtsim member");
                    return NRT_INVALID;
                }
                *prog = data;
                *prog_len = (size_t)size;
            }
        }
        off += 512 + body;
    }
    if (headers == 0) {
        sim_log("nrt_load: invalid NEFF: the tar payload is empty");
        return NRT_INVALID;
    }
    if (*prog == NULL) {
        sim_log("nrt_load: invalid NEFF: no program.nrtsim member in the tar payload (not a simulator NEFF?)");
        return NRT_INVALID;
    }
    return NRT_SUCCESS;
}

/* ------------------------------------------------------------------------------------------------- program */

static int is_float_dt(int dt) {
    return DT[dt].is_float;
}

static NRT_STATUS program_error(int line, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static NRT_STATUS program_error(int line, const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (line > 0) {
        sim_log("nrt_load: invalid program.nrtsim, line %d: %s", line, buf);
    } else {
        sim_log("nrt_load: invalid program.nrtsim: %s", buf);
    }
    return NRT_INVALID;
}

static int find_rank(const program_t *p, const int *idx, int n, uint32_t rank, int *count) {
    int found = -1;
    *count = 0;
    for (int i = 0; i < n; i++) {
        if (p->t[idx[i]].ndim == rank) {
            if (found < 0) {
                found = idx[i];
            }
            (*count)++;
        }
    }
    return found;
}

static int same_shape(const tdecl_t *a, const tdecl_t *b) {
    if (a->ndim != b->ndim) {
        return 0;
    }
    for (uint32_t i = 0; i < a->ndim; i++) {
        if (a->shape[i] != b->shape[i]) {
            return 0;
        }
    }
    return 1;
}

static NRT_STATUS check_outputs_float(const program_t *p, const char *fn) {
    for (int i = 0; i < p->nout; i++) {
        const tdecl_t *o = &p->t[p->out_idx[i]];
        if (!is_float_dt(o->dt)) {
            return program_error(0, "%s output '%s' must be a floating-point tensor, not %s", fn, o->name,
                                 DT[o->dt].name);
        }
    }
    return NRT_SUCCESS;
}

/* Checks that the declared tensors fit the function; fills the role indices. */
static NRT_STATUS program_check(program_t *p) {
    const char *fn = FN_NAMES[p->fn];
    if (p->nin == 0 || p->nout == 0) {
        return program_error(0, "%s needs at least one input and one output", fn);
    }
    int c;
    switch (p->fn) {
    case FN_ECHO:
        if (p->nin != p->nout) {
            return program_error(0, "echo pairs inputs with outputs: %d inputs but %d outputs", p->nin, p->nout);
        }
        for (int i = 0; i < p->nin; i++) {
            const tdecl_t *a = &p->t[p->in_idx[i]], *b = &p->t[p->out_idx[i]];
            if (a->numel != b->numel) {
                return program_error(0, "echo input '%s' has %" PRIu64 " elements but output '%s' has %" PRIu64,
                                     a->name, a->numel, b->name, b->numel);
            }
            if (is_float_dt(a->dt) && !is_float_dt(b->dt)) {
                return program_error(0, "echo cannot convert floating-point input '%s' to integer output '%s'",
                                     a->name, b->name);
            }
        }
        return NRT_SUCCESS;
    case FN_TEXT_ENCODER: {
        if (p->nin != 1) {
            return program_error(0, "text_encoder takes one input (ids [B,S]), got %d", p->nin);
        }
        const tdecl_t *ids = &p->t[p->in_idx[0]];
        if (ids->ndim != 2 || is_float_dt(ids->dt)) {
            return program_error(0, "text_encoder input '%s' must be integer ids [B,S]", ids->name);
        }
        for (int i = 0; i < p->nout; i++) {
            const tdecl_t *o = &p->t[p->out_idx[i]];
            int ok = (o->ndim == 3 && o->shape[0] == ids->shape[0] && o->shape[1] == ids->shape[1])
                     || (o->ndim == 2 && o->shape[0] == ids->shape[0]);
            if (!ok) {
                return program_error(0, "text_encoder output '%s' must be [B,S,H] or [B,H] for ids [%u,%u]",
                                     o->name, ids->shape[0], ids->shape[1]);
            }
        }
        return check_outputs_float(p, fn);
    }
    case FN_UNET: {
        if ((p->nin < 3 || p->nin > 5) || p->nout != 1) {
            return program_error(0, "unet takes 3 inputs (sample, timestep, encoder_hidden_states), 4 (LCM: and "
                                    "timestep_cond [B,D]) or 5 (SDXL: and text_embeds [B,P], time_ids [B,T]) and has "
                                    "1 output");
        }
        p->r_sample = find_rank(p, p->in_idx, p->nin, 4, &c);
        int c1, c3, c2;
        p->r_timestep = find_rank(p, p->in_idx, p->nin, 1, &c1);
        p->r_ehs = find_rank(p, p->in_idx, p->nin, 3, &c3);
        p->r_text_embeds = p->r_time_ids = p->r_timestep_cond = -1;
        if (p->nin == 4) {
            p->r_timestep_cond = find_rank(p, p->in_idx, p->nin, 2, &c2);
            if (c2 != 1) {
                return program_error(0, "an LCM unet's fourth input must be 2-D: timestep_cond [B,D]");
            }
            if (p->t[p->r_timestep_cond].shape[0] != p->t[p->r_sample].shape[0]) {
                return program_error(0, "unet batch mismatch: timestep_cond must have the sample's B=%u",
                                     p->t[p->r_sample].shape[0]);
            }
        }
        if (p->nin == 5) {
            p->r_text_embeds = find_rank(p, p->in_idx, p->nin, 2, &c2);
            for (int i = 0; i < p->nin; i++) { /* the second 2-D input in declaration order */
                if (p->t[p->in_idx[i]].ndim == 2 && p->in_idx[i] != p->r_text_embeds) {
                    p->r_time_ids = p->in_idx[i];
                }
            }
            if (c2 != 2) {
                return program_error(0, "an SDXL unet's two extra inputs must be 2-D: text_embeds [B,P] and then "
                                        "time_ids [B,T] (declaration order)");
            }
            uint32_t b5 = p->t[p->r_sample].shape[0];
            if (p->t[p->r_text_embeds].shape[0] != b5 || p->t[p->r_time_ids].shape[0] != b5) {
                return program_error(0, "unet batch mismatch: text_embeds and time_ids must have the sample's B=%u", b5);
            }
        }
        if (c != 1 || c1 != 1 || c3 != 1) {
            return program_error(0, "unet inputs must be one 4-D sample [B,C,h,w], one 1-D timestep [B] and one 3-D "
                                    "encoder_hidden_states [B,S,H]");
        }
        const tdecl_t *s = &p->t[p->r_sample], *t = &p->t[p->r_timestep], *e = &p->t[p->r_ehs];
        const tdecl_t *o = &p->t[p->out_idx[0]];
        uint32_t b = s->shape[0];
        if ((t->shape[0] != b && t->shape[0] != 1) || e->shape[0] != b) {
            return program_error(0, "unet batch mismatch: sample B=%u, timestep [%u], encoder_hidden_states B=%u",
                                 b, t->shape[0], e->shape[0]);
        }
        if (!same_shape(o, s)) {
            return program_error(0, "unet output '%s' must have the sample's shape", o->name);
        }
        return check_outputs_float(p, fn);
    }
    case FN_POST_QUANT_CONV: {
        if (p->nin != 1 || p->nout != 1) {
            return program_error(0, "post_quant_conv takes one input and has one output");
        }
        const tdecl_t *z = &p->t[p->in_idx[0]], *o = &p->t[p->out_idx[0]];
        if (z->ndim != 4 || !same_shape(z, o)) {
            return program_error(0, "post_quant_conv needs a 4-D input and an output of the same shape");
        }
        return check_outputs_float(p, fn);
    }
    case FN_VAE_DECODER:
    case FN_VAE_DECODE: {
        if (p->nin != 1 || p->nout != 1) {
            return program_error(0, "vae_decoder takes one input and has one output");
        }
        const tdecl_t *q = &p->t[p->in_idx[0]], *o = &p->t[p->out_idx[0]];
        if (q->ndim != 4 || o->ndim != 4 || q->shape[0] != o->shape[0]) {
            return program_error(0, "vae_decoder needs input [B,C,h,w] and output [B,K,H,W] with the same B");
        }
        if (o->shape[2] % q->shape[2] != 0 || o->shape[3] % q->shape[3] != 0
            || o->shape[2] / q->shape[2] != o->shape[3] / q->shape[3]) {
            return program_error(0, "vae_decoder output %ux%u is not the input %ux%u times one integer factor",
                                 o->shape[2], o->shape[3], q->shape[2], q->shape[3]);
        }
        return check_outputs_float(p, fn);
    }
    case FN_VAE_ENCODER: {
        if (p->nin != 1 || p->nout != 1) {
            return program_error(0, "vae_encoder takes one input and has one output");
        }
        const tdecl_t *x = &p->t[p->in_idx[0]], *o = &p->t[p->out_idx[0]];
        if (x->ndim != 4 || o->ndim != 4 || x->shape[0] != o->shape[0] || x->shape[1] != 3) {
            return program_error(0, "vae_encoder needs input [B,3,H,W] and output [B,K,h,w] with the same B");
        }
        if (x->shape[2] % o->shape[2] != 0 || x->shape[3] % o->shape[3] != 0
            || x->shape[2] / o->shape[2] != x->shape[3] / o->shape[3]) {
            return program_error(0, "vae_encoder input %ux%u is not the output %ux%u times one integer factor",
                                 x->shape[2], x->shape[3], o->shape[2], o->shape[3]);
        }
        return check_outputs_float(p, fn);
    }
    }
    return program_error(0, "unknown function");
}

static NRT_STATUS program_parse(const unsigned char *src, size_t len, program_t *p) {
    if (len > SIM_MAX_PROGRAM) {
        return program_error(0, "larger than %u bytes", SIM_MAX_PROGRAM);
    }
    char *text = malloc(len + 1);
    if (text == NULL) {
        sim_log("nrt_load: out of host memory");
        return NRT_RESOURCE;
    }
    memcpy(text, src, len);
    text[len] = '\0';
    if (strlen(text) != len) {
        free(text);
        return program_error(0, "contains a NUL byte");
    }
    memset(p, 0, sizeof *p);
    p->fn = -1;
    NRT_STATUS st = NRT_SUCCESS;
    int line = 0, header = 0;
    for (char *ln = text, *next; ln != NULL; ln = next) {
        next = strchr(ln, '\n');
        if (next != NULL) {
            *next++ = '\0';
        }
        line++;
        char *hash = strchr(ln, '#');
        if (hash != NULL) {
            *hash = '\0';
        }
        char *tok[4 + SIM_MAX_DIMS];
        int nt = 0;
        char *save_tok = NULL;
        for (char *t = strtok_r(ln, " \t\r", &save_tok); t != NULL; t = strtok_r(NULL, " \t\r", &save_tok)) {
            if (nt == (int)(sizeof tok / sizeof tok[0])) {
                st = program_error(line, "too many fields (at most %d dimensions)", SIM_MAX_DIMS);
                goto done;
            }
            tok[nt++] = t;
        }
        if (nt == 0) {
            continue;
        }
        if (!header) {
            if (nt != 2 || strcmp(tok[0], "nrtsim") != 0 || strcmp(tok[1], "1") != 0) {
                st = program_error(line, "the first line must be 'nrtsim 1'");
                goto done;
            }
            header = 1;
            continue;
        }
        if (strcmp(tok[0], "fn") == 0) {
            if (nt != 2 || p->fn >= 0) {
                st = program_error(line, "exactly one 'fn <name>' line is allowed");
                goto done;
            }
            for (int i = 0; i < (int)(sizeof FN_NAMES / sizeof FN_NAMES[0]); i++) {
                if (strcmp(tok[1], FN_NAMES[i]) == 0) {
                    p->fn = i;
                }
            }
            if (p->fn < 0) {
                st = program_error(line, "unknown function '%s' (echo, text_encoder, unet, post_quant_conv, "
                                         "vae_decoder, vae_encoder, vae_decode)", tok[1]);
                goto done;
            }
        } else if (strcmp(tok[0], "in") == 0 || strcmp(tok[0], "out") == 0) {
            int usage = tok[0][0] == 'i' ? NRT_TENSOR_USAGE_INPUT : NRT_TENSOR_USAGE_OUTPUT;
            if (nt < 3) {
                st = program_error(line, "expected '%s <name> <dtype> <d0> <d1> ...'", tok[0]);
                goto done;
            }
            if (p->ntensors == SIM_MAX_TENSORS) {
                st = program_error(line, "more than %d tensors", SIM_MAX_TENSORS);
                goto done;
            }
            if (strlen(tok[1]) >= NRT_TENSOR_NAME_MAX) {
                st = program_error(line, "tensor name longer than %d bytes", NRT_TENSOR_NAME_MAX - 1);
                goto done;
            }
            for (int i = 0; i < p->ntensors; i++) {
                if (p->t[i].usage == usage && strcmp(p->t[i].name, tok[1]) == 0) {
                    st = program_error(line, "%s tensor '%s' declared twice", tok[0], tok[1]);
                    goto done;
                }
            }
            int dt = dtype_parse(tok[2]);
            if (dt < 0) {
                st = program_error(line, "unknown dtype '%s' (float32 bfloat16 float16 int64 int32 int16 int8 uint8 "
                                         "uint16 uint32 uint64)", tok[2]);
                goto done;
            }
            tdecl_t *d = &p->t[p->ntensors];
            snprintf(d->name, sizeof d->name, "%s", tok[1]);
            d->usage = usage;
            d->dt = dt;
            d->ndim = (uint32_t)(nt - 3);
            d->numel = 1;
            for (int i = 3; i < nt; i++) {
                long v;
                if (!parse_int(tok[i], 1, INT32_MAX, &v)) {
                    st = program_error(line, "dimension '%s' is not a positive integer", tok[i]);
                    goto done;
                }
                d->shape[i - 3] = (uint32_t)v;
                if (d->numel > (UINT64_C(1) << 40) / (uint64_t)v) {
                    st = program_error(line, "tensor '%s' is too large", tok[1]);
                    goto done;
                }
                d->numel *= (uint64_t)v;
            }
            d->bytes = (size_t)(d->numel * DT[dt].size);
            if (usage == NRT_TENSOR_USAGE_INPUT) {
                p->in_idx[p->nin++] = p->ntensors;
            } else {
                p->out_idx[p->nout++] = p->ntensors;
            }
            p->ntensors++;
        } else if (strcmp(tok[0], "delay_us") == 0) {
            long v;
            if (nt != 2 || !parse_int(tok[1], 0, (long)SIM_MAX_DELAY_US, &v)) {
                st = program_error(line, "expected 'delay_us <0..%llu>'", SIM_MAX_DELAY_US);
                goto done;
            }
            p->delay_us = (uint64_t)v;
        } else {
            st = program_error(line, "unknown directive '%s' (fn, in, out, delay_us)", tok[0]);
            goto done;
        }
    }
    if (!header) {
        st = program_error(0, "empty (the first line must be 'nrtsim 1')");
    } else if (p->fn < 0) {
        st = program_error(0, "no 'fn' line");
    } else {
        st = program_check(p);
    }
done:
    free(text);
    return st;
}

/* Validates a NEFF and parses its program (no lock needed). */
static NRT_STATUS neff_parse(const void *bytes, size_t size, program_t *p, char *name, size_t name_len) {
    const unsigned char *b = bytes;
    if (b == NULL) {
        sim_log("nrt_load: neff_bytes is NULL");
        return NRT_INVALID;
    }
    if (size < sizeof(neff_header_t)) {
        sim_log("nrt_load: invalid NEFF: %zu bytes, smaller than the 1024-byte NEFF header", size);
        return NRT_INVALID;
    }
    uint64_t header_size = rd64(b + 8), data_size = rd64(b + 16), major = rd64(b + 24);
    if (header_size != sizeof(neff_header_t)) {
        sim_log("nrt_load: invalid NEFF: header_size %" PRIu64 " (expected 1024)", header_size);
        return NRT_INVALID;
    }
    if (data_size > (uint64_t)size || (uint64_t)size - sizeof(neff_header_t) != data_size) {
        sim_log("nrt_load: invalid NEFF: %zu bytes given but the header says 1024 + data_size %" PRIu64, size,
                data_size);
        return NRT_INVALID;
    }
    if (major < 1 || major > 2) {
        sim_log("nrt_load: NEFF version %" PRIu64 ".%" PRIu64 " is not supported (major 1..2)", major, rd64(b + 32));
        return NRT_UNSUPPORTED_NEFF_VERSION;
    }
    const neff_header_t *h = bytes;
    size_t nl = strnlen(h->name, sizeof h->name);
    snprintf(name, name_len, "%.*s", (int)nl, h->name);
    if (env_flag("NEURON_RT_VALIDATE_HASH")) {
        uint64_t pkg = rd64(b);
        if (pkg != 1) {
            sim_log("nrt_load: NEURON_RT_VALIDATE_HASH: the simulator checks sha256 hashes (pkg_version 1) only; "
                    "this NEFF has pkg_version %" PRIu64, pkg);
            return NRT_INVALID;
        }
        unsigned char digest[32];
        sha256(b + sizeof(neff_header_t), (size_t)data_size, digest);
        if (memcmp(digest, h->hash, 32) != 0) {
            sim_log("nrt_load: NEURON_RT_VALIDATE_HASH: the NEFF payload does not match the sha256 in its header");
            return NRT_INVALID;
        }
    }
    const unsigned char *prog;
    size_t prog_len;
    NRT_STATUS st = tar_find_program(b + sizeof(neff_header_t), data_size, &prog, &prog_len);
    if (st != NRT_SUCCESS) {
        return st;
    }
    return program_parse(prog, prog_len, p);
}

/* -------------------------------------------------------------------------------------------- load / unload */

NRT_STATUS nrt_load(const void *neff_bytes, size_t size, int32_t vnc, int32_t vnc_count, nrt_model_t **model) {
    pthread_mutex_lock(&g_mu);
    NRT_STATUS st = injected_locked("nrt_load");
    if (st == NRT_SUCCESS) {
        st = state_status_locked("nrt_load");
    }
    pthread_mutex_unlock(&g_mu);
    struct nrt_model *m = NULL;
    if (st != NRT_SUCCESS) {
        goto out;
    }
    if (model == NULL) {
        sim_log("nrt_load: model (out) is NULL");
        st = NRT_INVALID;
        goto out;
    }
    if (vnc_count != -1 && vnc_count < 1) {
        sim_log("nrt_load: vnc_count %d: must be -1 (SDK 2.28+) or a number of NeuronCores >= 1", (int)vnc_count);
        st = NRT_INVALID;
        goto out;
    }
    m = calloc(1, sizeof *m);
    if (m != NULL && (m->prog = malloc(sizeof *m->prog)) == NULL) {
        free(m);
        m = NULL;
    }
    if (m == NULL) {
        sim_log("nrt_load: out of host memory");
        st = NRT_RESOURCE;
        goto out;
    }
    st = neff_parse(neff_bytes, size, m->prog, m->name, sizeof m->name);
    if (st != NRT_SUCCESS) {
        goto out;
    }
    pthread_mutex_lock(&g_mu);
    st = state_status_locked("nrt_load"); /* nrt_close may have run meanwhile */
    if (st == NRT_SUCCESS) {
        int count = vnc_count == -1 ? 1 : vnc_count;
        if (vnc < -1 || vnc >= g_visible_n) {
            sim_log("nrt_load: vnc %d is not a visible NeuronCore (0..%d, or -1 for any)", (int)vnc,
                    g_visible_n - 1);
            st = NRT_INVALID;
        } else if (vnc >= 0 && vnc + count > g_visible_n) {
            sim_log("nrt_load: vnc %d with vnc_count %d needs NeuronCores up to %d but only %d are visible",
                    (int)vnc, count, vnc + count - 1, g_visible_n);
            st = NRT_LOAD_NOT_ENOUGH_NC;
        } else if (count > g_visible_n) {
            sim_log("nrt_load: vnc_count %d but only %d NeuronCores are visible", count, g_visible_n);
            st = NRT_LOAD_NOT_ENOUGH_NC;
        } else {
            if (vnc == -1) { /* least loaded visible core, lowest index first */
                int best = 0, best_n = INT_MAX;
                for (int c = 0; c + count <= g_visible_n; c++) {
                    int n = 0;
                    for (link_t *l = g_models.next; l != &g_models; l = l->next) {
                        n += ((struct nrt_model *)l)->vnc == c;
                    }
                    if (n < best_n) {
                        best = c;
                        best_n = n;
                    }
                }
                vnc = best;
            }
            m->vnc = vnc;
            list_push(&g_models, &m->link);
            g_st.loads++;
            g_st.live_models++;
            *model = m;
            m = NULL;
        }
    }
    pthread_mutex_unlock(&g_mu);
out:
    if (m != NULL) {
        free(m->prog);
        free(m);
    }
    if (st != NRT_SUCCESS) {
        pthread_mutex_lock(&g_mu);
        g_st.failed_loads++;
        fail_locked(st);
        pthread_mutex_unlock(&g_mu);
    }
    return st;
}

NRT_STATUS nrt_unload(nrt_model_t *model) {
    pthread_mutex_lock(&g_mu);
    NRT_STATUS st = injected_locked("nrt_unload");
    if (st == NRT_SUCCESS) {
        st = state_status_locked("nrt_unload");
    }
    if (st == NRT_SUCCESS && !list_has(&g_models, model)) {
        sim_log("nrt_unload: %p is not a loaded model", (void *)model);
        g_st.invalid_handles++;
        st = NRT_INVALID_HANDLE;
    }
    if (st == NRT_SUCCESS) {
        if (model->busy > 0) {
            sim_log("nrt_unload: model %p is executing; waiting (a caller should not unload under a running execute)",
                    (void *)model);
            g_st.unloads_during_execute++;
        }
        while (model->busy > 0) {
            pthread_cond_wait(&g_cv, &g_mu);
            if (!list_has(&g_models, model)) {
                break;
            }
        }
        if (list_has(&g_models, model)) {
            free_model(model);
            g_st.unloads++;
            g_st.live_models--;
        } else {
            sim_log("nrt_unload: the model was unloaded by another thread meanwhile");
            st = NRT_INVALID_HANDLE;
        }
    }
    fail_locked(st);
    pthread_mutex_unlock(&g_mu);
    return st;
}

/* ------------------------------------------------------------------------------------------------ tensor info */

NRT_STATUS nrt_get_model_tensor_info(nrt_model_t *model, nrt_tensor_info_array_t **tensor_info) {
    pthread_mutex_lock(&g_mu);
    NRT_STATUS st = injected_locked("nrt_get_model_tensor_info");
    if (st == NRT_SUCCESS) {
        st = state_status_locked("nrt_get_model_tensor_info");
    }
    if (st == NRT_SUCCESS && tensor_info == NULL) {
        sim_log("nrt_get_model_tensor_info: tensor_info (out) is NULL");
        st = NRT_INVALID;
    }
    if (st == NRT_SUCCESS && !list_has(&g_models, model)) {
        sim_log("nrt_get_model_tensor_info: %p is not a loaded model", (void *)model);
        g_st.invalid_handles++;
        st = NRT_INVALID_HANDLE;
    }
    if (st == NRT_SUCCESS) {
        const program_t *p = model->prog;
        size_t n = (size_t)p->ntensors;
        nrt_tensor_info_array_t *a = calloc(1, sizeof *a + n * sizeof(nrt_tensor_info_t));
        info_node_t *node = calloc(1, sizeof *node);
        int ok = a != NULL && node != NULL;
        if (a != NULL) {
            a->tensor_count = n;
        }
        for (size_t i = 0; ok && i < n; i++) {
            const tdecl_t *d = &p->t[i];
            nrt_tensor_info_t *ti = &a->tensor_array[i];
            snprintf(ti->name, sizeof ti->name, "%s", d->name);
            ti->usage = (nrt_tensor_usage_t)d->usage;
            ti->size = d->bytes;
            ti->dtype = (nrt_dtype_t)(g_bare_info ? 0 : g_legacy_dtypes ? DT[d->dt].legacy : DT[d->dt].current);
            ti->ndim = g_bare_info ? 0 : d->ndim;  /* bare: names, usage and sizes only, as for a stripped NEFF */
            ti->shape = malloc((d->ndim ? d->ndim : 1) * sizeof(uint32_t));
            if (ti->shape == NULL) {
                ok = 0;
                break;
            }
            memcpy(ti->shape, d->shape, d->ndim * sizeof(uint32_t));
        }
        if (!ok) {
            for (size_t i = 0; a != NULL && i < n; i++) {
                free(a->tensor_array[i].shape);
            }
            free(a);
            free(node);
            sim_log("nrt_get_model_tensor_info: out of host memory");
            st = NRT_RESOURCE;
        } else {
            node->arr = a;
            list_push(&g_infos, &node->link);
            g_st.live_tensor_infos++;
            *tensor_info = a;
        }
    }
    fail_locked(st);
    pthread_mutex_unlock(&g_mu);
    return st;
}

NRT_STATUS nrt_free_model_tensor_info(nrt_tensor_info_array_t *tensor_info) {
    pthread_mutex_lock(&g_mu);
    NRT_STATUS st = NRT_SUCCESS;
    if (tensor_info != NULL) {
        info_node_t *found = NULL;
        for (link_t *l = g_infos.next; l != &g_infos; l = l->next) {
            if (((info_node_t *)l)->arr == tensor_info) {
                found = (info_node_t *)l;
                break;
            }
        }
        if (found == NULL) {
            sim_log("nrt_free_model_tensor_info: %p was not returned by nrt_get_model_tensor_info or was already "
                    "freed (nrt_close frees the arrays still alive)", (void *)tensor_info);
            g_st.invalid_handles++;
            st = NRT_INVALID;
        } else {
            free_info_node(found);
            g_st.live_tensor_infos--;
        }
    }
    fail_locked(st);
    pthread_mutex_unlock(&g_mu);
    return st;
}

/* ---------------------------------------------------------------------------------------------------- tensors */

NRT_STATUS nrt_tensor_allocate(nrt_tensor_placement_t tensor_placement, int vnc, size_t size, const char *name,
                               nrt_tensor_t **tensor) {
    pthread_mutex_lock(&g_mu);
    NRT_STATUS st = injected_locked("nrt_tensor_allocate");
    if (st == NRT_SUCCESS) {
        st = state_status_locked("nrt_tensor_allocate");
    }
    const char *nm = name ? name : "";
    if (st == NRT_SUCCESS) {
        if (tensor == NULL) {
            sim_log("nrt_tensor_allocate: tensor (out) is NULL");
            st = NRT_INVALID;
        } else if (tensor_placement != NRT_TENSOR_PLACEMENT_DEVICE && tensor_placement != NRT_TENSOR_PLACEMENT_HOST
                   && tensor_placement != NRT_TENSOR_PLACEMENT_VIRTUAL) {
            sim_log("nrt_tensor_allocate('%s'): placement %d is not DEVICE, HOST or VIRTUAL", nm,
                    (int)tensor_placement);
            st = NRT_INVALID;
        } else if (size == 0) {
            sim_log("nrt_tensor_allocate('%s'): size 0", nm);
            st = NRT_INVALID;
        } else if (tensor_placement == NRT_TENSOR_PLACEMENT_DEVICE && (vnc < 0 || vnc >= g_visible_n)) {
            sim_log("nrt_tensor_allocate('%s'): DEVICE tensor on vnc %d, but the visible NeuronCores are 0..%d", nm,
                    vnc, g_visible_n - 1);
            st = NRT_INVALID;
        } else if (tensor_placement != NRT_TENSOR_PLACEMENT_DEVICE && (vnc < -1 || vnc >= g_visible_n)) {
            sim_log("nrt_tensor_allocate('%s'): vnc %d is neither -1 nor a visible NeuronCore (0..%d)", nm, vnc,
                    g_visible_n - 1);
            st = NRT_INVALID;
        } else if (tensor_placement == NRT_TENSOR_PLACEMENT_HOST && size > SIM_HOST_TENSOR_MAX) {
            sim_log("nrt_tensor_allocate('%s'): %zu bytes: NRT_TENSOR_PLACEMENT_HOST tensors cannot be larger than "
                    "4MB (use DEVICE or VIRTUAL)", nm, size);
            st = NRT_INVALID;
        } else if (strlen(nm) >= NRT_TENSOR_NAME_MAX) {
            sim_log("nrt_tensor_allocate: name longer than %d bytes", NRT_TENSOR_NAME_MAX - 1);
            st = NRT_INVALID;
        }
    }
    nrt_tensor_t *t = NULL;
    if (st == NRT_SUCCESS) {
        t = calloc(1, sizeof *t);
        unsigned char *data = t ? malloc(size) : NULL;
        if (data == NULL) {
            free(t);
            sim_log("nrt_tensor_allocate('%s'): cannot allocate %zu bytes", nm, size);
            st = NRT_RESOURCE;
        } else {
            /* device memory is not zeroed: poison it (0xFF bytes: NaN in every float type, -1 in every signed int)
             * so that inputs the application never wrote are visible */
            memset(data, 0xff, size);
            t->data = data;
            t->size = size;
            t->vnc = vnc;
            t->placement = (int)tensor_placement;
            snprintf(t->name, sizeof t->name, "%s", nm);
            list_push(&g_tensors, &t->link);
            g_st.tensor_allocs++;
            g_st.live_tensors++;
            *tensor = t;
        }
    }
    fail_locked(st);
    pthread_mutex_unlock(&g_mu);
    return st;
}

void nrt_tensor_free(nrt_tensor_t **tensor) {
    if (tensor == NULL || *tensor == NULL) {
        return;
    }
    pthread_mutex_lock(&g_mu);
    nrt_tensor_t *t = *tensor;
    if (!list_has(&g_tensors, t)) {
        sim_log("nrt_tensor_free: %p is not a live tensor (double free, or freed by nrt_close)", (void *)t);
        g_st.invalid_handles++;
    } else {
        while (t->busy > 0) { /* an execution or copy is using it */
            pthread_cond_wait(&g_cv, &g_mu);
            if (!list_has(&g_tensors, t)) {
                break;
            }
        }
        if (list_has(&g_tensors, t)) {
            free_tensor(t);
            g_st.tensor_frees++;
            g_st.live_tensors--;
        }
    }
    *tensor = NULL;
    pthread_mutex_unlock(&g_mu);
}

/* Pins a live tensor for a copy (g_mu held). */
static NRT_STATUS tensor_copy_begin(const nrt_tensor_t *t, size_t offset, size_t size, const void *buf,
                                    const char *caller) {
    NRT_STATUS st = injected_locked(caller);
    if (st == NRT_SUCCESS) {
        st = state_status_locked(caller);
    }
    if (st != NRT_SUCCESS) {
        return st;
    }
    if (!list_has(&g_tensors, t)) {
        sim_log("%s: %p is not a live tensor", caller, (const void *)t);
        g_st.invalid_handles++;
        return NRT_INVALID_HANDLE;
    }
    if (buf == NULL && size > 0) {
        sim_log("%s('%s'): buf is NULL", caller, t->name);
        return NRT_INVALID;
    }
    if (offset > t->size || size > t->size - offset) {
        sim_log("%s('%s'): offset %zu + size %zu is outside the tensor's %zu bytes", caller, t->name, offset, size,
                t->size);
        return NRT_INVALID;
    }
    ((nrt_tensor_t *)t)->busy++;
    g_busy_ops++;
    return NRT_SUCCESS;
}

static void tensor_copy_end(const nrt_tensor_t *t, int64_t *counter) {
    pthread_mutex_lock(&g_mu);
    (*counter)++;
    ((nrt_tensor_t *)t)->busy--;
    g_busy_ops--;
    pthread_cond_broadcast(&g_cv);
    pthread_mutex_unlock(&g_mu);
}

NRT_STATUS nrt_tensor_read(const nrt_tensor_t *tensor, void *buf, size_t offset, size_t size) {
    pthread_mutex_lock(&g_mu);
    NRT_STATUS st = tensor_copy_begin(tensor, offset, size, buf, "nrt_tensor_read");
    fail_locked(st);
    pthread_mutex_unlock(&g_mu);
    if (st != NRT_SUCCESS) {
        return st;
    }
    if (size > 0) {
        memcpy(buf, tensor->data + offset, size);
    }
    tensor_copy_end(tensor, &g_st.tensor_reads);
    return NRT_SUCCESS;
}

NRT_STATUS nrt_tensor_write(nrt_tensor_t *tensor, const void *buf, size_t offset, size_t size) {
    pthread_mutex_lock(&g_mu);
    NRT_STATUS st = tensor_copy_begin(tensor, offset, size, buf, "nrt_tensor_write");
    fail_locked(st);
    pthread_mutex_unlock(&g_mu);
    if (st != NRT_SUCCESS) {
        return st;
    }
    if (size > 0) {
        memcpy(tensor->data + offset, buf, size);
    }
    tensor_copy_end(tensor, &g_st.tensor_writes);
    return NRT_SUCCESS;
}

size_t nrt_tensor_get_size(const nrt_tensor_t *tensor) {
    pthread_mutex_lock(&g_mu);
    size_t n = 0;
    if (list_has(&g_tensors, tensor)) {
        n = tensor->size;
    } else {
        sim_log("nrt_tensor_get_size: %p is not a live tensor; returning 0", (const void *)tensor);
        g_st.invalid_handles++;
    }
    pthread_mutex_unlock(&g_mu);
    return n;
}

/* ------------------------------------------------------------------------------------------------ tensor sets */

NRT_STATUS nrt_allocate_tensor_set(nrt_tensor_set_t **result) {
    pthread_mutex_lock(&g_mu);
    NRT_STATUS st = injected_locked("nrt_allocate_tensor_set");
    if (st == NRT_SUCCESS) {
        st = state_status_locked("nrt_allocate_tensor_set");
    }
    if (st == NRT_SUCCESS && result == NULL) {
        sim_log("nrt_allocate_tensor_set: result (out) is NULL");
        st = NRT_INVALID;
    }
    if (st == NRT_SUCCESS) {
        sim_set_t *s = calloc(1, sizeof *s);
        if (s == NULL) {
            sim_log("nrt_allocate_tensor_set: out of host memory");
            st = NRT_RESOURCE;
        } else {
            list_push(&g_sets, &s->link);
            g_st.set_allocs++;
            g_st.live_sets++;
            *result = s;
        }
    }
    fail_locked(st);
    pthread_mutex_unlock(&g_mu);
    return st;
}

void nrt_destroy_tensor_set(nrt_tensor_set_t **tensor_set) {
    if (tensor_set == NULL || *tensor_set == NULL) {
        return;
    }
    pthread_mutex_lock(&g_mu);
    sim_set_t *s = *tensor_set;
    if (!list_has(&g_sets, s)) {
        sim_log("nrt_destroy_tensor_set: %p is not a live tensor set (double destroy, or freed by nrt_close)",
                (void *)s);
        g_st.invalid_handles++;
    } else {
        while (s->busy > 0) {
            pthread_cond_wait(&g_cv, &g_mu);
            if (!list_has(&g_sets, s)) {
                break;
            }
        }
        if (list_has(&g_sets, s)) {
            free_set(s);
            g_st.set_frees++;
            g_st.live_sets--;
        }
    }
    *tensor_set = NULL;
    pthread_mutex_unlock(&g_mu);
}

NRT_STATUS nrt_add_tensor_to_tensor_set(nrt_tensor_set_t *tensor_set, const char *tensor_name, nrt_tensor_t *tensor) {
    pthread_mutex_lock(&g_mu);
    NRT_STATUS st = injected_locked("nrt_add_tensor_to_tensor_set");
    if (st == NRT_SUCCESS) {
        st = state_status_locked("nrt_add_tensor_to_tensor_set");
    }
    sim_set_t *s = tensor_set;
    if (st == NRT_SUCCESS && !list_has(&g_sets, s)) {
        sim_log("nrt_add_tensor_to_tensor_set: %p is not a live tensor set", (void *)s);
        g_st.invalid_handles++;
        st = NRT_INVALID_HANDLE;
    }
    if (st == NRT_SUCCESS && !list_has(&g_tensors, tensor)) {
        sim_log("nrt_add_tensor_to_tensor_set('%s'): %p is not a live tensor", tensor_name ? tensor_name : "",
                (void *)tensor);
        g_st.invalid_handles++;
        st = NRT_INVALID_HANDLE;
    }
    if (st == NRT_SUCCESS && (tensor_name == NULL || *tensor_name == '\0'
                              || strlen(tensor_name) >= NRT_TENSOR_NAME_MAX)) {
        sim_log("nrt_add_tensor_to_tensor_set: the tensor name must be 1..%d bytes", NRT_TENSOR_NAME_MAX - 1);
        st = NRT_INVALID;
    }
    if (st == NRT_SUCCESS && s->busy > 0) {
        sim_log("nrt_add_tensor_to_tensor_set('%s'): the set is in use by a running nrt_execute", tensor_name);
        st = NRT_INVALID;
    }
    if (st == NRT_SUCCESS) {
        int i;
        for (i = 0; i < s->n; i++) {
            if (strcmp(s->e[i].name, tensor_name) == 0) {
                break;
            }
        }
        if (i < s->n) {
            s->e[i].tensor = tensor; /* add/replace */
        } else {
            if (s->n == s->cap) {
                int cap = s->cap ? 2 * s->cap : 8;
                set_entry_t *e = realloc(s->e, (size_t)cap * sizeof *e);
                if (e == NULL) {
                    st = NRT_RESOURCE;
                } else {
                    s->e = e;
                    s->cap = cap;
                }
            }
            char *nm = st == NRT_SUCCESS ? strdup(tensor_name) : NULL;
            if (nm == NULL) {
                sim_log("nrt_add_tensor_to_tensor_set: out of host memory");
                st = NRT_RESOURCE;
            } else {
                s->e[s->n].name = nm;
                s->e[s->n].tensor = tensor;
                s->n++;
            }
        }
    }
    fail_locked(st);
    pthread_mutex_unlock(&g_mu);
    return st;
}

/* ---------------------------------------------------------------------------------------------------- compute */

typedef struct {
    const program_t *p;
    unsigned char *buf[SIM_MAX_TENSORS]; /* tensor data by declaration index */
} exec_ctx_t;

static float *load_all_f32(const tdecl_t *d, const unsigned char *src) {
    float *f = malloc((d->numel ? d->numel : 1) * sizeof(float));
    if (f != NULL) {
        for (uint64_t i = 0; i < d->numel; i++) {
            f[i] = load_f32(d->dt, src, i);
        }
    }
    return f;
}

static void store_all_f32(const tdecl_t *d, unsigned char *dst, const float *f) {
    for (uint64_t i = 0; i < d->numel; i++) {
        store_f32(d->dt, dst, i, f[i]);
    }
}

/* Runs the program on pinned tensors. Inputs are read completely before any output is written (aliasing-safe). */
static NRT_STATUS compute(exec_ctx_t *x) {
    const program_t *p = x->p;
    float *in[SIM_MAX_TENSORS] = {0};
    float *out = NULL;
    NRT_STATUS st = NRT_SUCCESS;
    switch (p->fn) {
    case FN_ECHO: {
        /* pairs: k-th input -> k-th output; integer->integer as int64 values, otherwise through float32 */
        void *tmp[SIM_MAX_TENSORS] = {0};
        for (int k = 0; k < p->nin && st == NRT_SUCCESS; k++) {
            const tdecl_t *a = &p->t[p->in_idx[k]], *b = &p->t[p->out_idx[k]];
            const unsigned char *src = x->buf[p->in_idx[k]];
            if (!is_float_dt(a->dt) && !is_float_dt(b->dt)) {
                int64_t *v = malloc((a->numel ? a->numel : 1) * sizeof(int64_t));
                if (v != NULL) {
                    for (uint64_t i = 0; i < a->numel; i++) {
                        v[i] = load_i64(a->dt, src, i);
                    }
                }
                tmp[k] = v;
            } else {
                tmp[k] = load_all_f32(a, src);
            }
            if (tmp[k] == NULL) {
                st = NRT_RESOURCE;
            }
        }
        for (int k = 0; k < p->nin && st == NRT_SUCCESS; k++) {
            const tdecl_t *a = &p->t[p->in_idx[k]], *b = &p->t[p->out_idx[k]];
            unsigned char *dst = x->buf[p->out_idx[k]];
            if (!is_float_dt(a->dt) && !is_float_dt(b->dt)) {
                const int64_t *v = tmp[k];
                for (uint64_t i = 0; i < b->numel; i++) {
                    store_i64(b->dt, dst, i, v[i]);
                }
            } else if (a->dt == DT_F16 && b->dt == DT_BF16) {
                const float *v = tmp[k];
                for (uint64_t i = 0; i < b->numel; i++) {
                    uint16_t w = f32_to_bf16_scalar(v[i]);
                    memcpy(dst + 2 * i, &w, 2);
                }
            } else {
                store_all_f32(b, dst, tmp[k]);
            }
        }
        for (int k = 0; k < p->nin; k++) {
            free(tmp[k]);
        }
        return st;
    }
    case FN_TEXT_ENCODER: {
        const tdecl_t *ids = &p->t[p->in_idx[0]];
        const unsigned char *ib = x->buf[p->in_idx[0]];
        uint64_t B = ids->shape[0], S = ids->shape[1];
        int64_t *idv = malloc(B * S * sizeof(int64_t));
        if (idv == NULL) {
            return NRT_RESOURCE;
        }
        for (uint64_t i = 0; i < B * S; i++) {
            idv[i] = load_i64(ids->dt, ib, i);
        }
        for (int k = 0; k < p->nout && st == NRT_SUCCESS; k++) {
            const tdecl_t *o = &p->t[p->out_idx[k]];
            uint64_t H = o->shape[o->ndim - 1];
            float *r = malloc(o->numel * sizeof(float));
            if (r == NULL) {
                st = NRT_RESOURCE;
                break;
            }
            for (uint64_t b = 0; b < B; b++) {
                uint64_t s0 = o->ndim == 3 ? 0 : S - 1; /* [B,H]: the last position's hidden state */
                for (uint64_t s = s0; s < S; s++) {
                    /* (id*(j+1) + 7*s) mod 64 with int64 wrap-around: the low 6 bits of the unsigned value */
                    uint64_t id = (uint64_t)idv[b * S + s];
                    for (uint64_t j = 0; j < H; j++) {
                        uint64_t v = (id * (j + 1) + 7 * s) & 63u;
                        float m = (float)v * 0.03125f;
                        float h = m - 1.0f;
                        uint64_t at = o->ndim == 3 ? (b * S + s) * H + j : b * H + j;
                        r[at] = h;
                    }
                }
            }
            store_all_f32(o, x->buf[p->out_idx[k]], r);
            free(r);
        }
        free(idv);
        return st;
    }
    case FN_UNET: {
        const tdecl_t *sd = &p->t[p->r_sample], *td = &p->t[p->r_timestep], *ed = &p->t[p->r_ehs];
        const tdecl_t *od = &p->t[p->out_idx[0]];
        in[0] = load_all_f32(sd, x->buf[p->r_sample]);
        in[1] = load_all_f32(td, x->buf[p->r_timestep]);
        in[2] = load_all_f32(ed, x->buf[p->r_ehs]);
        int sdxl = p->r_text_embeds >= 0;
        const tdecl_t *ted = sdxl ? &p->t[p->r_text_embeds] : NULL, *tid = sdxl ? &p->t[p->r_time_ids] : NULL;
        if (sdxl) {
            in[3] = load_all_f32(ted, x->buf[p->r_text_embeds]);
            in[4] = load_all_f32(tid, x->buf[p->r_time_ids]);
        }
        int lcm = p->r_timestep_cond >= 0;
        const tdecl_t *tcd = lcm ? &p->t[p->r_timestep_cond] : NULL;
        if (lcm) {
            in[3] = load_all_f32(tcd, x->buf[p->r_timestep_cond]);
        }
        out = malloc(od->numel * sizeof(float));
        if (!in[0] || !in[1] || !in[2] || !out || (sdxl && (!in[3] || !in[4])) || (lcm && !in[3])) {
            st = NRT_RESOURCE;
            break;
        }
        uint64_t B = sd->shape[0], C = sd->shape[1], h = sd->shape[2], w = sd->shape[3];
        uint64_t S = ed->shape[1], H = ed->shape[2], n = C * h * w;
        uint64_t P = sdxl ? ted->shape[1] : 1, T = sdxl ? tid->shape[1] : 1, D = lcm ? tcd->shape[1] : 1;
        for (uint64_t b = 0; b < B; b++) {
            float t = in[1][td->numel == 1 ? 0 : b];
            for (uint64_t pi = 0; pi < n; pi++) { /* pi = (c*h + y)*w + x */
                float s = in[0][b * n + pi];
                float e = in[2][(b * S + pi % S) * H + pi % H];
                float m1 = s * 0.5f;
                float m2 = e * 0.25f;
                float a = m1 + m2;
                float m3 = t * 0.0009765625f;
                float r = a + m3;
                if (sdxl) { /* r += te[b, p % P]*0.125; r += tid[b, p % T]*0.0009765625 */
                    float m4 = in[3][b * P + pi % P] * 0.125f;
                    r = r + m4;
                    float m5 = in[4][b * T + pi % T] * 0.0009765625f;
                    r = r + m5;
                }
                if (lcm) { /* r += cond[b, p % D]*0.125 */
                    float m6 = in[3][b * D + pi % D] * 0.125f;
                    r = r + m6;
                }
                out[b * n + pi] = r;
            }
        }
        store_all_f32(od, x->buf[p->out_idx[0]], out);
        break;
    }
    case FN_POST_QUANT_CONV: {
        const tdecl_t *zd = &p->t[p->in_idx[0]], *od = &p->t[p->out_idx[0]];
        in[0] = load_all_f32(zd, x->buf[p->in_idx[0]]);
        if (!in[0]) {
            st = NRT_RESOURCE;
            break;
        }
        for (uint64_t i = 0; i < zd->numel; i++) {
            float m = in[0][i] * 0.5f;
            in[0][i] = m + 0.125f;
        }
        store_all_f32(od, x->buf[p->out_idx[0]], in[0]);
        break;
    }
    case FN_VAE_DECODER:
    case FN_VAE_DECODE: {
        const tdecl_t *qd = &p->t[p->in_idx[0]], *od = &p->t[p->out_idx[0]];
        in[0] = load_all_f32(qd, x->buf[p->in_idx[0]]);
        out = malloc(od->numel * sizeof(float));
        if (!in[0] || !out) {
            st = NRT_RESOURCE;
            break;
        }
        if (p->fn == FN_VAE_DECODE) {  /* post_quant_conv first, in float32, as the two-program path computes it */
            for (uint64_t i = 0; i < qd->numel; i++) {
                float m = in[0][i] * 0.5f;
                in[0][i] = m + 0.125f;
            }
        }
        uint64_t B = qd->shape[0], C = qd->shape[1], h = qd->shape[2], w = qd->shape[3];
        uint64_t K = od->shape[1], Hh = od->shape[2], W = od->shape[3], f = Hh / h;
        const float *q = in[0];
        for (uint64_t b = 0; b < B; b++) {
            for (uint64_t k = 0; k < K; k++) {
                uint64_t c0 = k % C, c1 = (k + 1) % C;
                for (uint64_t Y = 0; Y < Hh; Y++) {
                    for (uint64_t X = 0; X < W; X++) {
                        uint64_t yx = (Y / f) * w + X / f;
                        float a = q[(b * C + c0) * h * w + yx] * 0.25f;
                        float c = q[(b * C + c1) * h * w + yx] * 0.125f;
                        out[((b * K + k) * Hh + Y) * W + X] = a + c;
                    }
                }
            }
        }
        store_all_f32(od, x->buf[p->out_idx[0]], out);
        break;
    }
    case FN_VAE_ENCODER: {
        const tdecl_t *id = &p->t[p->in_idx[0]], *od = &p->t[p->out_idx[0]];
        in[0] = load_all_f32(id, x->buf[p->in_idx[0]]);
        out = malloc(od->numel * sizeof(float));
        if (!in[0] || !out) {
            st = NRT_RESOURCE;
            break;
        }
        uint64_t B = id->shape[0], C = id->shape[1], Hh = id->shape[2], W = id->shape[3];
        uint64_t K = od->shape[1], h = od->shape[2], w = od->shape[3], f = Hh / h;
        const float *img = in[0];
        for (uint64_t b = 0; b < B; b++) {
            for (uint64_t k = 0; k < K; k++) {
                uint64_t c0 = k % C, c1 = (k + 1) % C;
                for (uint64_t y = 0; y < h; y++) {
                    for (uint64_t xx = 0; xx < w; xx++) {
                        float a = img[((b * C + c0) * Hh + y * f) * W + xx * f] * 0.5f;
                        float c = img[((b * C + c1) * Hh + y * f + f - 1) * W + xx * f + f - 1] * 0.25f;
                        out[((b * K + k) * h + y) * w + xx] = a + c;
                    }
                }
            }
        }
        store_all_f32(od, x->buf[p->out_idx[0]], out);
        break;
    }
    }
    for (int i = 0; i < SIM_MAX_TENSORS; i++) {
        free(in[i]);
    }
    free(out);
    return st;
}

static void sleep_us(uint64_t us) {
    struct timespec ts = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Finds `name` in a set, or NULL. */
static nrt_tensor_t *set_get(const sim_set_t *s, const char *name) {
    for (int i = 0; i < s->n; i++) {
        if (strcmp(s->e[i].name, name) == 0) {
            return s->e[i].tensor;
        }
    }
    return NULL;
}

/* Validates the sets against the model (g_mu held); fills ctx->buf and the pinned tensor list. */
static NRT_STATUS exec_validate(struct nrt_model *m, const sim_set_t *ins, const sim_set_t *outs, exec_ctx_t *ctx,
                                nrt_tensor_t **pinned, int *npinned) {
    const program_t *p = m->prog;
    *npinned = 0;
    for (int pass = 0; pass < 2; pass++) {
        const sim_set_t *s = pass == 0 ? ins : outs;
        int usage = pass == 0 ? NRT_TENSOR_USAGE_INPUT : NRT_TENSOR_USAGE_OUTPUT;
        const char *what = pass == 0 ? "input" : "output";
        for (int i = 0; i < s->n; i++) { /* every name in the set must be one of the model's tensors */
            int known = 0;
            for (int k = 0; k < p->ntensors; k++) {
                known |= p->t[k].usage == usage && strcmp(p->t[k].name, s->e[i].name) == 0;
            }
            if (!known) {
                sim_log("nrt_execute(%s): the %s set has '%s', which is not an %s of the model", m->name, what,
                        s->e[i].name, what);
                return NRT_INVALID;
            }
        }
        for (int k = 0; k < p->ntensors; k++) {
            const tdecl_t *d = &p->t[k];
            if (d->usage != usage) {
                continue;
            }
            nrt_tensor_t *t = set_get(s, d->name);
            if (t == NULL) {
                sim_log("nrt_execute(%s): %s '%s' (%s, %zu bytes) is missing from the %s set", m->name, what, d->name,
                        DT[d->dt].name, d->bytes, what);
                return NRT_INVALID;
            }
            if (!list_has(&g_tensors, t)) {
                sim_log("nrt_execute(%s): the tensor added as %s '%s' was freed", m->name, what, d->name);
                g_st.invalid_handles++;
                return NRT_INVALID;
            }
            if (t->size != d->bytes) {
                sim_log("nrt_execute(%s): %s '%s' is %zu bytes but the model's %s tensor is %zu bytes", m->name, what,
                        d->name, t->size, DT[d->dt].name, d->bytes);
                return NRT_INVALID;
            }
            if (t->placement == NRT_TENSOR_PLACEMENT_DEVICE && t->vnc != m->vnc) {
                sim_log("nrt_execute(%s): %s '%s' is a DEVICE tensor on vnc %d but the model is loaded on vnc %d "
                        "(allocate the tensors per model and NeuronCore)", m->name, what, d->name, t->vnc, m->vnc);
                return NRT_INVALID;
            }
            ctx->buf[k] = t->data;
            pinned[(*npinned)++] = t;
        }
    }
    return NRT_SUCCESS;
}

static void barrier_wait_locked(void) {
    int parties = g_barrier_parties;
    if (parties < 2) {
        return;
    }
    unsigned long gen = g_barrier_gen;
    if (++g_barrier_waiting >= parties) {
        g_barrier_gen++;
        g_barrier_waiting = 0;
        pthread_cond_broadcast(&g_barrier_cv);
        return;
    }
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    int64_t ns = dl.tv_nsec + (int64_t)(g_barrier_timeout_ms % 1000) * 1000000;
    dl.tv_sec += g_barrier_timeout_ms / 1000 + (time_t)(ns / 1000000000);
    dl.tv_nsec = (long)(ns % 1000000000);
    while (gen == g_barrier_gen) {
        int rc = pthread_cond_timedwait(&g_barrier_cv, &g_mu, &dl);
        if (rc == ETIMEDOUT && gen == g_barrier_gen) {
            g_barrier_waiting--;
            g_st.barrier_timeouts++;
            sim_log("nrt_execute: exec barrier timed out after %d ms waiting for %d executions", g_barrier_timeout_ms,
                    parties);
            break;
        }
    }
}

NRT_STATUS nrt_execute(nrt_model_t *model, const nrt_tensor_set_t *input_set, nrt_tensor_set_t *output_set) {
    pthread_mutex_lock(&g_mu);
    NRT_STATUS st = injected_locked("nrt_execute");
    if (st == NRT_SUCCESS) {
        st = state_status_locked("nrt_execute");
    }
    if (st == NRT_SUCCESS && !list_has(&g_models, model)) {
        sim_log("nrt_execute: %p is not a loaded model", (void *)model);
        g_st.invalid_handles++;
        st = NRT_INVALID_HANDLE;
    }
    const sim_set_t *ins = input_set;
    sim_set_t *outs = output_set;
    if (st == NRT_SUCCESS && (!list_has(&g_sets, ins) || !list_has(&g_sets, outs))) {
        sim_log("nrt_execute(%s): the %s set %p is not a live tensor set", model->name,
                list_has(&g_sets, ins) ? "output" : "input", list_has(&g_sets, ins) ? (void *)outs : (void *)ins);
        g_st.invalid_handles++;
        st = NRT_INVALID_HANDLE;
    }
    exec_ctx_t ctx;
    memset(&ctx, 0, sizeof ctx);
    nrt_tensor_t *pinned[SIM_MAX_TENSORS];
    int npinned = 0;
    if (st == NRT_SUCCESS) {
        ctx.p = model->prog;
        st = exec_validate(model, ins, outs, &ctx, pinned, &npinned);
    }
    if (st != NRT_SUCCESS) {
        g_st.failed_executes++;
        fail_locked(st);
        pthread_mutex_unlock(&g_mu);
        return st;
    }
    /* pin everything and count the execution as in flight */
    int vnc = model->vnc;
    model->busy++;
    ((sim_set_t *)ins)->busy++;
    outs->busy++;
    for (int i = 0; i < npinned; i++) {
        pinned[i]->busy++;
    }
    g_busy_ops++;
    g_inflight++;
    g_inflight_vnc[vnc]++;
    if (g_inflight > g_st.max_concurrent_executes) { /* the moment the maximum is first reached */
        int64_t mask = 0;
        for (int c = 0; c < SIM_MAX_CORES; c++) {
            if (g_inflight_vnc[c] > 0) {
                mask |= INT64_C(1) << c;
            }
        }
        g_st.max_concurrent_executes = g_inflight;
        g_st.max_concurrent_vnc_mask = mask;
    }
    barrier_wait_locked();
    uint64_t delay = model->prog->delay_us + (uint64_t)g_delay_us;
    pthread_mutex_unlock(&g_mu);

    int64_t t0 = now_ns();
    st = compute(&ctx);
    if (delay > 0) {
        sleep_us(delay);
    }
    int64_t dt = now_ns() - t0;

    pthread_mutex_lock(&g_mu);
    model->busy--;
    ((sim_set_t *)ins)->busy--;
    outs->busy--;
    for (int i = 0; i < npinned; i++) {
        pinned[i]->busy--;
    }
    g_busy_ops--;
    g_inflight--;
    g_inflight_vnc[vnc]--;
    g_st.exec_ns_total += dt;
    if (st == NRT_SUCCESS) {
        g_st.executes++;
        if (vnc < NRTSIM_STATS_VNC_SLOTS) {
            g_st.execs_per_vnc[vnc]++;
        }
    } else {
        sim_log("nrt_execute(%s): out of host memory", model->name);
        g_st.failed_executes++;
        fail_locked(st);
    }
    pthread_cond_broadcast(&g_cv);
    pthread_mutex_unlock(&g_mu);
    return st;
}

/* ------------------------------------------------------------------------------------------------ control API */

void nrtsim_get_stats(nrtsim_stats_t *out) {
    if (out == NULL) {
        return;
    }
    pthread_mutex_lock(&g_mu);
    *out = g_st;
    pthread_mutex_unlock(&g_mu);
}

void nrtsim_reset_stats(void) {
    pthread_mutex_lock(&g_mu);
    nrtsim_stats_t keep = g_st;
    memset(&g_st, 0, sizeof g_st);
    g_st.initialized = keep.initialized;
    g_st.live_models = keep.live_models;
    g_st.live_tensors = keep.live_tensors;
    g_st.live_sets = keep.live_sets;
    g_st.live_tensor_infos = keep.live_tensor_infos;
    pthread_mutex_unlock(&g_mu);
}

int nrtsim_stats_count(void) {
    return NRTSIM_STATS_COUNT;
}

const char *nrtsim_stat_name(int index) {
    static const char *const NAMES[NRTSIM_STATS_COUNT] = {
        "init_calls", "close_calls", "initialized", "loads", "failed_loads", "unloads", "live_models",
        "tensor_allocs", "tensor_frees", "live_tensors", "set_allocs", "set_frees", "live_sets", "tensor_writes",
        "tensor_reads", "executes", "failed_executes", "max_concurrent_executes", "max_concurrent_vnc_mask",
        "exec_ns_total", "leaked_at_close", "execs_per_vnc[0]", "execs_per_vnc[1]", "execs_per_vnc[2]",
        "execs_per_vnc[3]", "execs_per_vnc[4]", "execs_per_vnc[5]", "execs_per_vnc[6]", "execs_per_vnc[7]",
        "barrier_timeouts", "invalid_handles", "injected_failures", "failed_calls", "live_tensor_infos",
        "unloads_during_execute"};
    return index >= 0 && index < NRTSIM_STATS_COUNT ? NAMES[index] : NULL;
}

int nrtsim_inject(const char *call, int skip, int count, int status) {
    pthread_mutex_lock(&g_mu);
    int rc = inject_add_locked(call, skip, count, status);
    pthread_mutex_unlock(&g_mu);
    return rc;
}

void nrtsim_clear_injections(void) {
    pthread_mutex_lock(&g_mu);
    while (g_rules != NULL) {
        inject_rule_t *r = g_rules;
        g_rules = r->next;
        free(r);
    }
    pthread_mutex_unlock(&g_mu);
}

void nrtsim_set_exec_barrier(int parties, int timeout_ms) {
    pthread_mutex_lock(&g_mu);
    g_barrier_parties = parties > 1 ? parties : 0;
    g_barrier_timeout_ms = timeout_ms > 0 ? timeout_ms : 10000;
    /* release whoever waits under the old setting */
    g_barrier_gen++;
    g_barrier_waiting = 0;
    pthread_cond_broadcast(&g_barrier_cv);
    pthread_mutex_unlock(&g_mu);
}

void nrtsim_set_exec_delay_us(int us) {
    pthread_mutex_lock(&g_mu);
    g_delay_us = us > 0 ? us : 0;
    pthread_mutex_unlock(&g_mu);
}

void nrtsim_set_legacy_dtypes(int on) {
    pthread_mutex_lock(&g_mu);
    g_legacy_dtypes = on != 0;
    pthread_mutex_unlock(&g_mu);
}

void nrtsim_set_bare_tensor_info(int on) {
    pthread_mutex_lock(&g_mu);
    g_bare_info = on != 0;
    pthread_mutex_unlock(&g_mu);
}
