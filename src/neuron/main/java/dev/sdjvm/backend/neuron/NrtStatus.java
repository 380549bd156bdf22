package dev.sdjvm.backend.neuron;

import dev.sdjvm.errors.BackendException;

/**
 * The Neuron Runtime's {@code NRT_STATUS} codes, with the numeric values of {@code nrt_status.h} (Neuron Runtime API
 * documentation; mirrored in {@code include/nrt_binding.h}).
 */
public enum NrtStatus {
    NRT_SUCCESS(0, "operation completed successfully"),
    NRT_FAILURE(1, "non-specific failure"),
    NRT_INVALID(2, "invalid input (e.g. invalid NEFF, bad instruction, input tensor name/size mismatch)"),
    NRT_INVALID_HANDLE(3, "invalid handle passed"),
    NRT_RESOURCE(4, "failed to allocate a resource for the requested operation"),
    NRT_TIMEOUT(5, "operation timed out"),
    NRT_HW_ERROR(6, "hardware failure"),
    NRT_QUEUE_FULL(7, "too many pending executions"),
    NRT_LOAD_NOT_ENOUGH_NC(9, "not enough NeuronCores available to load the model"),
    NRT_UNSUPPORTED_NEFF_VERSION(10, "NEFF version not supported by this runtime"),
    NRT_FAIL_HOST_MEM_ALLOC(11, "host memory allocation failed"),
    NRT_UNINITIALIZED(13, "runtime not initialised (nrt_init not called)"),
    NRT_CLOSED(14, "runtime already closed"),
    NRT_QUEUE_EMPTY(15, "queue empty"),
    NRT_EXEC_UNIT_UNRECOVERABLE(101, "execution unit in an unrecoverable state"),
    NRT_EXEC_BAD_INPUT(1002, "invalid input submitted to an execution"),
    NRT_EXEC_COMPLETED_WITH_NUM_ERR(1003, "execution completed with numerical errors (NaN/Inf)"),
    NRT_EXEC_COMPLETED_WITH_ERR(1004, "execution completed with other errors"),
    NRT_EXEC_NC_BUSY(1005, "the NeuronCore is locked (in use) by another model or process"),
    NRT_EXEC_OOB(1006, "out-of-bounds access during execution"),
    NRT_COLL_PENDING(1100, "collective operation pending"),
    NRT_EXEC_HW_ERR_COLLECTIVES(1200, "hardware error in collectives"),
    NRT_EXEC_HW_ERR_HBM_UE(1201, "HBM uncorrectable error caused incorrect results"),
    NRT_EXEC_HW_ERR_NC_UE(1202, "NeuronCore parity error caused incorrect results"),
    NRT_EXEC_HW_ERR_DMA_ABORT(1203, "the DMA engine encountered an error and halted execution"),
    NRT_EXEC_SW_NQ_OVERFLOW(1204, "execution timed out due to dropped notifications"),
    NRT_EXEC_HW_ERR_REPAIRABLE_HBM_UE(1205, "HBM repairable uncorrectable error caused incorrect results"),
    NRT_NETWORK_PROXY_FAILURE(1206, "network communication failed between Neuron hardware and collectives");

    private final int code;
    private final String description;

    NrtStatus(int code, String description) {
        this.code = code;
        this.description = description;
    }

    /** The numeric value returned by libnrt. */
    public int code() {
        return code;
    }

    /** The documented meaning. */
    public String description() {
        return description;
    }

    /** The status for {@code code}, or null when the code is not one of the documented values. */
    public static NrtStatus of(int code) {
        for (NrtStatus s : values()) {
            if (s.code == code) {
                return s;
            }
        }
        return null;
    }

    /** The status name for {@code code}: the enum name, or {@code NRT_STATUS(<code>)} for an undocumented code. */
    public static String nameOf(int code) {
        NrtStatus s = of(code);
        return s == null ? "NRT_STATUS(" + code + ")" : s.name();
    }

    /**
     * Returns normally for {@link #NRT_SUCCESS}; otherwise throws a {@link BackendException} whose
     * {@link BackendException#status() status} is the status name and whose message names the call.
     */
    public static void check(int code, String call) {
        BackendException e = failure(code, call);
        if (e != null) {
            throw e;
        }
    }

    /** Like {@link #check(int, String)}, but a failure is added to {@code into} as suppressed (cleanup after a failure). */
    public static void check(int code, String call, Throwable into) {
        BackendException e = failure(code, call);
        if (e != null) {
            into.addSuppressed(e);
        }
    }

    /** The exception for a failing status, or null for {@link #NRT_SUCCESS}. */
    static BackendException failure(int code, String call) {
        if (code == NRT_SUCCESS.code) {
            return null;
        }
        NrtStatus s = of(code);
        String what = s == null ? "undocumented status " + code : s.description() + " (" + code + ")";
        return new BackendException("Neuron runtime call " + call + " failed: " + what, nameOf(code), null);
    }
}
