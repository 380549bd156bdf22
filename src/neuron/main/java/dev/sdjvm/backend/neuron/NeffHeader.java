package dev.sdjvm.backend.neuron;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.HexFormat;

/**
 * The 1024-byte {@code neff_header_t} that starts every NEFF, followed by a tarball of {@link #dataSize()} bytes
 * (aws-neuron-sdk {@code neuron-runtime/explore/work-with-neff-files.rst}; declared in {@code include/nrt_binding.h}).
 * Little-endian. Offsets: pkg_version 0, header_size 8, data_size 16, neff_version_major 24, neff_version_minor 32,
 * neff_build_version[128] 40, num_tpb 168, hash[32] 172, uuid[16] 204, name[256] 220, requested_tpb_count 476,
 * tpb_per_node[64] 480, feature_bits 544, lnc_size 552, pad to 1024.
 */
public record NeffHeader(long pkgVersion, long headerSize, long dataSize, long versionMajor, long versionMinor,
                         String buildVersion, int numTpb, String hash, String uuid, String name, long featureBits,
                         int lncSize) {
    /** {@code sizeof(neff_header_t)}. */
    public static final int SIZE = 1024;
    /** A tar block. */
    static final int TAR_BLOCK = 512;

    /** Total NEFF bytes: header plus tarball. */
    public long totalSize() {
        return headerSize + dataSize;
    }

    /** Reads a header from {@code b} at {@code off} (at least {@link #SIZE} bytes available); no validation. */
    static NeffHeader parse(byte[] b, int off) {
        ByteBuffer h = ByteBuffer.wrap(b, off, SIZE).slice().order(ByteOrder.LITTLE_ENDIAN);
        HexFormat hex = HexFormat.of();
        return new NeffHeader(h.getLong(0), h.getLong(8), h.getLong(16), h.getLong(24), h.getLong(32),
                cString(b, off + 40, 128), h.getInt(168), hex.formatHex(b, off + 172, off + 204),
                hex.formatHex(b, off + 204, off + 220), cString(b, off + 220, 256), h.getLong(544), h.getInt(552));
    }

    /**
     * True when {@code b[off..]} holds a NEFF header: {@code header_size} 1024, a {@code data_size} that fits in
     * {@code available} bytes (counted from {@code off}), and at {@code off + 1024} the start of a tarball: a tar
     * header block whose checksum is right (or a gzip member). {@code b} must hold {@code off + 1024 + 512} bytes.
     */
    static boolean isHeaderAt(byte[] b, int off, long available) {
        if (getLong(b, off + 8) != SIZE) {
            return false;
        }
        long data = getLong(b, off + 16);
        if (data < TAR_BLOCK || data > available - SIZE) {
            return false;
        }
        int t = off + SIZE;
        if ((b[t] & 0xff) == 0x1f && (b[t + 1] & 0xff) == 0x8b) {
            return true;  // a gzip-compressed tarball
        }
        return tarHeaderValid(b, t);
    }

    /** A POSIX/GNU tar header block: a file name, and the checksum over the block with the checksum field as spaces. */
    static boolean tarHeaderValid(byte[] b, int off) {
        if (b[off] == 0) {
            return false;  // an end-of-archive block is not a first member
        }
        long stored = 0;
        int i = off + 148;
        int end = off + 156;
        while (i < end && b[i] == ' ') {
            i++;
        }
        int digits = 0;
        for (; i < end && b[i] >= '0' && b[i] <= '7'; i++) {
            stored = stored * 8 + (b[i] - '0');
            digits++;
        }
        if (digits == 0) {
            return false;
        }
        long sum = 0;
        for (int k = 0; k < TAR_BLOCK; k++) {
            sum += (k >= 148 && k < 156) ? ' ' : (b[off + k] & 0xff);
        }
        return sum == stored;
    }

    static long getLong(byte[] b, int off) {
        long v = 0;
        for (int i = 7; i >= 0; i--) {
            v = (v << 8) | (b[off + i] & 0xff);
        }
        return v;
    }

    private static String cString(byte[] b, int off, int max) {
        int n = 0;
        while (n < max && b[off + n] != 0) {
            n++;
        }
        return new String(b, off, n, StandardCharsets.UTF_8).strip();
    }

    @Override
    public String toString() {
        return "NEFF " + (name.isEmpty() ? "" : "'" + name + "' ") + "v" + versionMajor + "." + versionMinor
                + (buildVersion.isEmpty() ? "" : " (" + buildVersion + ")") + ", " + totalSize() + " bytes";
    }
}
