package dev.sdjvm.backend.neuron;

import com.sun.jna.Memory;
import dev.sdjvm.errors.ModelLoadException;
import dev.sdjvm.model.ArtifactRole;
import dev.sdjvm.model.Manifest;
import dev.sdjvm.model.ModelDirectory;
import java.io.IOException;
import java.io.InputStream;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Enumeration;
import java.util.List;
import java.util.Optional;
import java.util.stream.Stream;
import java.util.zip.ZipEntry;
import java.util.zip.ZipException;
import java.util.zip.ZipFile;

/**
 * Finds the compiled NEFF of each artifact of a model directory, in this order:
 * <ol>
 *   <li>inside the {@code .pt} itself, unmodified: {@code torch_neuronx.trace} keeps the NEFF in the TorchScript archive
 *       (as the state of a {@code torch.classes.neuron.Model}, pickled in a way that is not public). Every record of the
 *       archive (stored or deflated) is scanned for the documented NEFF header ({@link NeffHeader#isHeaderAt}:
 *       {@code header_size} 1024, a {@code data_size} that fits, a valid tar block at +1024), at any offset, so
 *       nothing depends on the pickle's structure;</li>
 *   <li>the file the manifest names ({@code artifacts.<role>.neff}, written by {@code tools/model/neuron_compile_sd21.py});</li>
 *   <li>{@code compiled_models/<name>.neff} beside {@code <name>.pt} ({@code model.neff} beside optimum-neuron's
 *       {@code model.neuron});</li>
 *   <li>AWS's compiler work directory: {@code <model>/compiler_workdir/<role>/**}{@code /*.neff} (torch-neuronx writes
 *       {@code graph.neff} there).</li>
 * </ol>
 */
public final class NeffLocator {
    private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(NeffLocator.class);

    private static final int WINDOW = 1 << 20;
    private static final int OVERLAP = NeffHeader.SIZE + NeffHeader.TAR_BLOCK;
    private static final VarHandle LONGS = MethodHandles.byteArrayViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);
    private static final long ONES = 0x0101010101010101L;
    private static final long HIGHS = 0x8080808080808080L;
    private static final long FOURS = 0x0404040404040404L;

    private NeffLocator() {
    }

    /**
     * Where one artifact's NEFF is.
     *
     * @param file   the file holding it (the {@code .pt} archive or a {@code .neff})
     * @param entry  the archive record holding it, or null when {@code file} is the NEFF or holds it directly
     * @param offset where the NEFF starts: in the record's (uncompressed) bytes, else in the file
     * @param header its header
     * @param origin how it was found: {@code pt}, {@code manifest}, {@code beside}, {@code compiler_workdir}
     */
    public record NeffSource(Path file, String entry, long offset, NeffHeader header, String origin) {
        /**
         * Human-readable location and how it was found, e.g. {@code unet.pt record 'unet/data/0' at byte 64 (NEFF
         * 'unet' v2.0, 1.6 GB), inside the .pt}.
         */
        public String describe() {
            String where = entry != null ? file.getFileName() + " record '" + entry + "' at byte " + offset
                    : offset > 0 ? file.getFileName() + " at byte " + offset : file.getFileName().toString();
            String how = switch (origin) {
                case "pt" -> file.getFileName().toString().endsWith(".pt") ? "inside the .pt"
                        : "inside " + file.getFileName();
                case "manifest" -> "named by the manifest";
                case "beside" -> "beside the .pt";
                case "compiler_workdir" -> "in compiler_workdir";
                default -> origin;
            };
            return where + " (" + header + "), " + how;
        }

        /** SHA-256 of the NEFF's bytes (header and tarball), hex. Reads them all. */
        public String sha256() {
            try (Memory m = load()) {
                java.security.MessageDigest md = java.security.MessageDigest.getInstance("SHA-256");
                long size = header.totalSize();
                byte[] buf = new byte[1 << 20];
                for (long done = 0; done < size; ) {
                    int n = (int) Math.min(buf.length, size - done);
                    m.read(done, buf, 0, n);
                    md.update(buf, 0, n);
                    done += n;
                }
                return java.util.HexFormat.of().formatHex(md.digest());
            } catch (java.security.NoSuchAlgorithmException e) {
                throw new IllegalStateException(e);
            }
        }

        /** The NEFF bytes in native memory (what {@code nrt_load} takes). The caller closes it. */
        public Memory load() {
            long size = header.totalSize();
            Memory m = new Memory(size);
            try {
                if (entry == null) {
                    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
                        long done = 0;
                        while (done < size) {
                            int chunk = (int) Math.min(size - done, 1 << 30);
                            ByteBuffer dst = m.getByteBuffer(done, chunk);
                            while (dst.hasRemaining()) {
                                if (ch.read(dst, offset + done + dst.position()) < 0) {
                                    throw new IOException("unexpected end of file");
                                }
                            }
                            done += chunk;
                        }
                    }
                } else {
                    try (ZipFile zip = new ZipFile(file.toFile()); InputStream in = zip.getInputStream(zip.getEntry(entry))) {
                        in.skipNBytes(offset);
                        byte[] buf = new byte[WINDOW];
                        long done = 0;
                        while (done < size) {
                            int n = in.read(buf, 0, (int) Math.min(buf.length, size - done));
                            if (n < 0) {
                                throw new IOException("unexpected end of record " + entry);
                            }
                            m.write(done, buf, 0, n);
                            done += n;
                        }
                    }
                }
            } catch (IOException | RuntimeException e) {
                m.close();
                throw new ModelLoadException(file, "cannot read the NEFF at " + describe() + ": " + e.getMessage(), e);
            }
            return m;
        }
    }

    /**
     * The NEFF of {@code role} in a model directory, trying the sources in the documented order.
     *
     * @throws ModelLoadException when a source exists but is unreadable or holds several different NEFFs
     */
    public static Optional<NeffSource> find(ModelDirectory dir, ArtifactRole role) {
        Path pt = dir.artifact(role);
        Optional<NeffSource> inPt = inArtifact(pt);
        if (inPt.isPresent()) {
            warnIfBesideDiffers(inPt.get(), pt);
            return inPt;
        }
        Path compiled = pt.getParent();
        Manifest mf = dir.manifest();
        if (mf != null && mf.artifacts().containsKey(role.id()) && mf.artifacts().get(role.id()).neff() != null) {
            Path f = compiled.resolve(mf.artifacts().get(role.id()).neff());
            if (Files.isRegularFile(f)) {
                return Optional.of(neffFile(f, "manifest"));
            }
            throw new ModelLoadException(f, "the manifest names this NEFF for " + role + ", but it does not exist");
        }
        Path beside = compiled.resolve(baseName(pt) + ".neff");
        if (Files.isRegularFile(beside)) {
            return Optional.of(neffFile(beside, "beside"));
        }
        Path workdir = dir.root().resolve("compiler_workdir").resolve(role.id());
        if (Files.isDirectory(workdir)) {
            List<Path> found;
            try (Stream<Path> s = Files.walk(workdir)) {
                found = s.filter(p -> p.getFileName().toString().endsWith(".neff") && Files.isRegularFile(p)).sorted().toList();
            } catch (IOException e) {
                throw new ModelLoadException(workdir, "cannot list: " + e.getMessage(), e);
            }
            if (found.size() > 1) {
                throw new ModelLoadException(workdir, "holds " + found.size() + " NEFFs " + found + "; keep the one for "
                        + role + " or copy it to " + beside);
            }
            if (found.size() == 1) {
                return Optional.of(neffFile(found.get(0), "compiler_workdir"));
            }
        }
        return Optional.empty();
    }

    /**
     * The NEFF inside the {@code .pt} is the one used; a {@code <name>.neff} or {@code graph.neff} beside it that holds
     * other bytes (a recompile that replaced one but not the other) is reported, since the two disagree about what runs.
     * Returns those files.
     */
    static List<Path> warnIfBesideDiffers(NeffSource used, Path pt) {
        List<Path> differing = new java.util.ArrayList<>();
        for (Path other : List.of(pt.resolveSibling(baseName(pt) + ".neff"), pt.resolveSibling("graph.neff"))) {
            if (!Files.isRegularFile(other)) {
                continue;
            }
            try {
                NeffSource o = neffFile(other, "beside");
                if (o.header().totalSize() != used.header().totalSize() || !o.sha256().equals(used.sha256())) {
                    LOG.warn("{}: the NEFF inside it ({}) differs from {} beside it ({}); the one inside the .pt runs",
                            pt.getFileName(), used.header(), other.getFileName(), o.header());
                    differing.add(other);
                }
            } catch (RuntimeException e) {
                LOG.warn("{}: {} beside it is not a usable NEFF: {}", pt.getFileName(), other.getFileName(), e.getMessage());
                differing.add(other);
            }
        }
        return differing;
    }

    /** An artifact's file name without {@code .pt} (AWS's layout) or {@code .neuron} (optimum-neuron's model.neuron). */
    static String baseName(Path artifact) {
        String base = artifact.getFileName().toString();
        for (String ext : new String[] {".pt", ".neuron"}) {
            if (base.endsWith(ext)) {
                return base.substring(0, base.length() - ext.length());
            }
        }
        return base;
    }

    /** A {@code .neff} file: the whole file must be one NEFF. */
    static NeffSource neffFile(Path f, String origin) {
        try (InputStream in = Files.newInputStream(f)) {
            long size = Files.size(f);
            byte[] head = in.readNBytes(OVERLAP);
            if (head.length < OVERLAP || !NeffHeader.isHeaderAt(head, 0, size)) {
                throw new ModelLoadException(f, "not a NEFF: no neff_header_t (header_size 1024, data_size, tarball) at its start");
            }
            NeffHeader h = NeffHeader.parse(head, 0);
            if (h.totalSize() != size) {
                throw new ModelLoadException(f, "NEFF header says " + h.totalSize() + " bytes (1024 + data_size "
                        + h.dataSize() + "), the file has " + size);
            }
            return new NeffSource(f, null, 0, h, origin);
        } catch (IOException e) {
            throw new ModelLoadException(f, "cannot read: " + e.getMessage(), e);
        }
    }

    /**
     * The NEFF inside a {@code .pt}: every record of the TorchScript archive (a zip) is scanned; a file that is not
     * a zip is scanned as a whole. Empty when there is none; several different NEFFs are an error.
     */
    public static Optional<NeffSource> inArtifact(Path pt) {
        if (!Files.isRegularFile(pt)) {
            throw new ModelLoadException(pt, "artifact not found");
        }
        List<NeffSource> found = new ArrayList<>();
        try (ZipFile zip = new ZipFile(pt.toFile())) {
            Enumeration<? extends ZipEntry> entries = zip.entries();
            while (entries.hasMoreElements()) {
                ZipEntry e = entries.nextElement();
                if (e.isDirectory()) {
                    continue;
                }
                try (InputStream in = zip.getInputStream(e)) {
                    for (long[] hit : scan(in, e.getSize())) {
                        found.add(new NeffSource(pt, e.getName(), hit[0], header(zip, e, hit[0]), "pt"));
                    }
                }
            }
        } catch (ZipException notZip) {
            try (InputStream in = Files.newInputStream(pt)) {
                long size = Files.size(pt);
                for (long[] hit : scan(in, size)) {
                    found.add(new NeffSource(pt, null, hit[0], headerAt(pt, hit[0]), "pt"));
                }
            } catch (IOException e) {
                throw new ModelLoadException(pt, "cannot read: " + e.getMessage(), e);
            }
        } catch (IOException e) {
            throw new ModelLoadException(pt, "cannot read the archive: " + e.getMessage(), e);
        }
        List<NeffSource> distinct = new ArrayList<>();
        for (NeffSource s : found) {
            if (distinct.stream().noneMatch(d -> d.header().equals(s.header()))) {
                distinct.add(s);
            }
        }
        if (distinct.size() > 1) {
            throw new ModelLoadException(pt, "holds " + distinct.size() + " different NEFFs ("
                    + distinct.stream().map(NeffSource::describe).toList() + "); put the one to run beside it as a .neff file");
        }
        return distinct.stream().findFirst();
    }

    private static NeffHeader header(ZipFile zip, ZipEntry e, long offset) throws IOException {
        try (InputStream in = zip.getInputStream(e)) {
            in.skipNBytes(offset);
            return NeffHeader.parse(in.readNBytes(NeffHeader.SIZE), 0);
        }
    }

    private static NeffHeader headerAt(Path f, long offset) throws IOException {
        try (InputStream in = Files.newInputStream(f)) {
            in.skipNBytes(offset);
            return NeffHeader.parse(in.readNBytes(NeffHeader.SIZE), 0);
        }
    }

    /**
     * Offsets of the NEFF headers in a stream of {@code size} bytes. A NEFF found is skipped as a whole (its tarball
     * is not scanned). Reads the stream to its end (skipping NEFF bodies).
     */
    static List<long[]> scan(InputStream in, long size) throws IOException {
        List<long[]> hits = new ArrayList<>();
        byte[] b = new byte[WINDOW + OVERLAP];
        long base = 0;   // stream offset of b[0]
        int filled = 0;
        int p = 0;       // next position to test
        boolean eof = false;
        while (true) {
            while (!eof && filled < b.length) {
                int n = in.read(b, filled, b.length - filled);
                if (n < 0) {
                    eof = true;
                } else {
                    filled += n;
                }
            }
            long total = eof ? base + filled : size >= 0 ? Math.max(size, base + filled) : Long.MAX_VALUE / 4;
            int last = filled - OVERLAP;  // positions < last have OVERLAP bytes after them in the buffer
            while (p < last) {
                // SWAR: test 8 positions at once for the byte 0x04 at p + 9 (header_size 1024 = 00 04 00 .. 00 at +8)
                long w = (long) LONGS.get(b, p + 9);
                long x = w ^ FOURS;
                if (((x - ONES) & ~x & HIGHS) == 0) {
                    p += 8;
                    continue;
                }
                int end = Math.min(p + 8, last);
                int hit = -1;
                for (int q = p; q < end; q++) {
                    if (b[q + 9] == 4 && b[q + 8] == 0 && NeffHeader.getLong(b, q + 8) == NeffHeader.SIZE
                            && NeffHeader.isHeaderAt(b, q, total - (base + q))) {
                        hit = q;
                        break;
                    }
                }
                if (hit < 0) {
                    p = end;
                    continue;
                }
                long at = base + hit;
                hits.add(new long[] {at});
                long skipTo = at + NeffHeader.SIZE + NeffHeader.getLong(b, hit + 16);
                if (skipTo <= base + filled) {
                    p = (int) (skipTo - base);
                } else {
                    long gap = skipTo - (base + filled);
                    in.skipNBytes(gap);
                    base = skipTo;
                    filled = 0;
                    p = 0;
                    last = -1;
                }
            }
            if (eof) {
                // the tail: fewer than OVERLAP bytes left cannot hold a header + tar block
                return hits;
            }
            if (last < 0) {
                continue;  // skipped past the buffer: refill from the new base
            }
            int keep = filled - p;
            System.arraycopy(b, p, b, 0, keep);
            base += p;
            filled = keep;
            p = 0;
        }
    }
}
