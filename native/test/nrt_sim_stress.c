/*
 * Threading stress test of the simulated runtime, meant for sanitizers (native/test/run_sanitizers.sh):
 * per init/close cycle, 4 threads each load the given NEFF on vnc 0 or 1, allocate their tensors and sets, execute
 * it 20 times with reads in between and release everything; cycle 1 adds an exec barrier of 4 parties. Then an
 * unload races nothing but the close. Exits non-zero on any unexpected status or on leaks.
 *
 * Usage: nrt_sim_stress NEFF_FILE     (e.g. src/all/test/resources/models/sim-neuron/neff/unet.neff)
 */
#define _POSIX_C_SOURCE 200809L
#include "nrt_binding.h"
#include "nrt_sim.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static char *neff;
static size_t neff_size;

typedef struct {
    int vnc;
    int iters;
    int fails;
} job_t;

static void *worker(void *arg) {
    job_t *j = arg;
    nrt_model_t *m;
    if (nrt_load(neff, neff_size, j->vnc, -1, &m) != NRT_SUCCESS) {
        j->fails++;
        return NULL;
    }
    nrt_tensor_info_array_t *info;
    nrt_tensor_set_t *in, *out;
    if (nrt_get_model_tensor_info(m, &info) || nrt_allocate_tensor_set(&in) || nrt_allocate_tensor_set(&out)) {
        j->fails++;
        return NULL;
    }
    int n = (int)info->tensor_count;
    nrt_tensor_t *t[16];
    char *buf = calloc(1, 1 << 24);
    for (int i = 0; i < n && i < 16; i++) {
        nrt_tensor_info_t *ti = &info->tensor_array[i];
        if (nrt_tensor_allocate(NRT_TENSOR_PLACEMENT_DEVICE, j->vnc, ti->size, ti->name, &t[i])
            || nrt_tensor_write(t[i], buf, 0, ti->size)
            || nrt_add_tensor_to_tensor_set(ti->usage == NRT_TENSOR_USAGE_OUTPUT ? out : in, ti->name, t[i])) {
            j->fails++;
        }
    }
    for (int k = 0; k < j->iters; k++) {
        j->fails += nrt_execute(m, in, out) != NRT_SUCCESS;
        for (int i = 0; i < n; i++) {
            j->fails += nrt_tensor_read(t[i], buf, 0, info->tensor_array[i].size) != NRT_SUCCESS;
        }
    }
    for (int i = 0; i < n; i++) {
        nrt_tensor_free(&t[i]);
    }
    nrt_destroy_tensor_set(&in);
    nrt_destroy_tensor_set(&out);
    j->fails += nrt_free_model_tensor_info(info) != NRT_SUCCESS;
    j->fails += nrt_unload(m) != NRT_SUCCESS;
    free(buf);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s NEFF_FILE\n", argv[0]);
        return 2;
    }
    FILE *f = fopen(argv[1], "rb");
    if (f == NULL || fseek(f, 0, SEEK_END) != 0) {
        perror(argv[1]);
        return 2;
    }
    neff_size = (size_t)ftell(f);
    rewind(f);
    neff = malloc(neff_size);
    if (neff == NULL || fread(neff, 1, neff_size, f) != neff_size) {
        return 2;
    }
    fclose(f);
    for (int cycle = 0; cycle < 3; cycle++) {
        if (nrt_init(NRT_FRAMEWORK_TYPE_NO_FW, "", "") != NRT_SUCCESS) {
            return 3;
        }
        nrtsim_reset_stats();
        nrtsim_set_exec_barrier(cycle == 1 ? 4 : 0, 5000);
        pthread_t th[4];
        job_t jobs[4];
        for (int i = 0; i < 4; i++) {
            jobs[i] = (job_t){i % 2, 20, 0};
            pthread_create(&th[i], NULL, worker, &jobs[i]);
        }
        for (int i = 0; i < 4; i++) {
            pthread_join(th[i], NULL);
            if (jobs[i].fails) {
                printf("cycle %d worker %d: %d failures\n", cycle, i, jobs[i].fails);
                return 4;
            }
        }
        nrtsim_stats_t s;
        nrtsim_get_stats(&s);
        printf("cycle %d: executes %lld, max in flight %lld (vnc mask %lld), barrier timeouts %lld\n", cycle,
               (long long)s.executes, (long long)s.max_concurrent_executes, (long long)s.max_concurrent_vnc_mask,
               (long long)s.barrier_timeouts);
        if (s.executes != 80 || s.live_models || s.live_tensors || s.live_sets || s.live_tensor_infos
            || s.failed_calls || (cycle == 1 && (s.max_concurrent_executes != 4 || s.barrier_timeouts))) {
            return 5;
        }
        nrt_close();
    }
    nrtsim_set_exec_barrier(0, 0);
    nrtsim_stats_t s;
    nrtsim_get_stats(&s);
    free(neff);
    return s.leaked_at_close == 0 ? 0 : 6;
}
