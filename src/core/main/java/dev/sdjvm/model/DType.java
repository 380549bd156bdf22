package dev.sdjvm.model;

import java.util.Locale;

/** Element types an artifact's inputs and outputs may have. */
public enum DType {
    FLOAT32(4), BFLOAT16(2), FLOAT16(2), INT64(8), INT32(4);

    private final int bytes;

    DType(int bytes) {
        this.bytes = bytes;
    }

    /** Bytes per element. */
    public int bytes() {
        return bytes;
    }

    /** Parses the names our manifest and torch use: {@code float32, fp32, torch.float32, bfloat16, bf16, ...}. */
    public static DType parse(String name) {
        if (name == null) {
            throw new IllegalArgumentException("dtype is null");
        }
        String n = name.trim().toLowerCase(Locale.ROOT);
        if (n.startsWith("torch.")) {
            n = n.substring("torch.".length());
        }
        switch (n) {
            case "float32": case "fp32": case "float":
                return FLOAT32;
            case "bfloat16": case "bf16":
                return BFLOAT16;
            case "float16": case "fp16": case "half":
                return FLOAT16;
            case "int64": case "long":
                return INT64;
            case "int32": case "int":
                return INT32;
            default:
                throw new IllegalArgumentException("unknown dtype '" + name + "' (expected float32, bfloat16, float16, int64, int32)");
        }
    }

    /** The manifest spelling ({@code float32, bfloat16, ...}). */
    public String manifestName() {
        return name().toLowerCase(Locale.ROOT);
    }
}
