package dev.sdjvm.backend.neuron;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.Map;
import java.util.zip.CRC32;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;

/**
 * Builds NEFF files for tests from the documented format: a 1024-byte {@code neff_header_t} (little-endian) followed by
 * a POSIX ustar tarball, and TorchScript-like zip archives that carry them.
 */
public final class NeffFiles {
    private NeffFiles() {
    }

    /** A ustar archive of the given members (name -&gt; content), ended by two zero blocks. */
    static byte[] tar(Map<String, byte[]> members) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (var m : members.entrySet()) {
            byte[] h = new byte[512];
            put(h, 0, m.getKey());
            put(h, 100, "0000644");
            put(h, 108, "0000000");
            put(h, 116, "0000000");
            put(h, 124, String.format("%011o", m.getValue().length));
            put(h, 136, String.format("%011o", 0));
            h[156] = '0';
            put(h, 257, "ustar");
            h[263] = '0';
            h[264] = '0';
            for (int i = 148; i < 156; i++) {
                h[i] = ' ';
            }
            long sum = 0;
            for (byte b : h) {
                sum += b & 0xff;
            }
            put(h, 148, String.format("%06o", sum));
            h[154] = 0;
            h[155] = ' ';
            out.writeBytes(h);
            out.writeBytes(m.getValue());
            out.writeBytes(new byte[(512 - m.getValue().length % 512) % 512]);
        }
        out.writeBytes(new byte[1024]);
        return out.toByteArray();
    }

    private static void put(byte[] b, int off, String s) {
        byte[] v = s.getBytes(StandardCharsets.US_ASCII);
        System.arraycopy(v, 0, b, off, v.length);
    }

    /** A NEFF: header (version 2.0, name, sha256 of the tarball) + the tarball. */
    static byte[] neff(String name, byte[] tarball) {
        ByteBuffer h = ByteBuffer.allocate(NeffHeader.SIZE).order(ByteOrder.LITTLE_ENDIAN);
        h.putLong(0, 1);                    // pkg_version
        h.putLong(8, NeffHeader.SIZE);      // header_size
        h.putLong(16, tarball.length);      // data_size
        h.putLong(24, 2);                   // neff_version_major
        h.putLong(32, 0);                   // neff_version_minor
        h.put(40, "sdjvm-test".getBytes(StandardCharsets.US_ASCII));
        h.putInt(168, 1);                   // num_tpb
        try {
            h.put(172, MessageDigest.getInstance("SHA-256").digest(tarball));
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
        h.put(220, name.getBytes(StandardCharsets.US_ASCII));
        h.putInt(476, 1);                   // requested_tpb_count
        h.putInt(552, 1);                   // lnc_size
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.writeBytes(h.array());
        out.writeBytes(tarball);
        return out.toByteArray();
    }

    /** A NEFF holding one member {@code program.nrtsim} (the simulator's program) plus a neff.json. */
    public static byte[] neffWithProgram(String name, String program) {
        return neff(name, tar(Map.of("neff.json", ("{\"name\": \"" + name + "\"}").getBytes(StandardCharsets.UTF_8),
                "sg00/program.nrtsim", program.getBytes(StandardCharsets.UTF_8))));
    }

    /** A zip archive (TorchScript's container) with the given records; stored (as torch.jit.save) or deflated. */
    static void zip(Path file, Map<String, byte[]> records, boolean deflate) throws IOException {
        try (ZipOutputStream z = new ZipOutputStream(Files.newOutputStream(file))) {
            for (var r : records.entrySet()) {
                ZipEntry e = new ZipEntry(r.getKey());
                if (!deflate) {
                    e.setMethod(ZipEntry.STORED);
                    e.setSize(r.getValue().length);
                    CRC32 crc = new CRC32();
                    crc.update(r.getValue());
                    e.setCrc(crc.getValue());
                } else {
                    e.setMethod(ZipEntry.DEFLATED);
                }
                z.putNextEntry(e);
                z.write(r.getValue());
                z.closeEntry();
            }
        }
    }

    /** {@code prefix + neff + suffix}: a NEFF inside other bytes (as inline in a pickle). */
    static byte[] embed(byte[] prefix, byte[] neff, byte[] suffix) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.writeBytes(prefix);
        out.writeBytes(neff);
        out.writeBytes(suffix);
        return out.toByteArray();
    }
}
