package dev.sdjvm.backend.torch;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sdjvm.model.DType;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Instant;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.Supplier;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.IValue;
import org.bytedeco.pytorch.IValueVector;
import org.bytedeco.pytorch.InferenceMode;
import org.bytedeco.pytorch.JitModule;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Measures and caches the CPU backend's rewrite decisions ({@link RewriteTuner}) for one process: the kernel screen
 * (bfloat16 against float32 compute, once per CPU, libtorch and thread count) and, per artifact, the timed variants.
 *
 * <p>A decision is cached under a key made of the CPU (model name and a hash of its flags), the libtorch version, the
 * intra-op thread count, the artifact (SHA-256 of its file), its dtype, the input shapes it was timed on and the
 * version of the rewrites. The cache is one JSON file, {@code cpu-rewrites.json}, in the tuning cache directory,
 * written atomically; a missing or unreadable file means measuring again. A decision measured while other processes
 * used more than a quarter of the CPUs is used for that load only and not cached.
 */
final class CpuTuning {
    private static final Logger LOG = LoggerFactory.getLogger(CpuTuning.class);
    /** Bumped whenever a rewrite changes what it produces: older cached decisions are then ignored. */
    static final int VERSION = 2;
    static final String FILE = "cpu-rewrites.json";
    /** Other processes' share of the CPUs above which a measurement is not cached. */
    static final double BUSY = 0.25;

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Object FILE_LOCK = new Object();

    private final Path dir;
    /** Decisions of this process (so that replicas and pipelines measure once even without a cache directory). */
    private static final Map<String, RewriteTuner.Decision> MEMO = new java.util.concurrent.ConcurrentHashMap<>();

    /** @param dir the tuning cache directory, or null for no cache */
    CpuTuning(Path dir) {
        this.dir = dir;
    }

    /**
     * The rewrites for one artifact: from the cache, or measured now (and cached).
     *
     * @param file   the artifact
     * @param role   its role, for messages
     * @param dtype  its floating-point dtype
     * @param inputs makes the inputs of one call at the artifact's real shapes (called inside a {@link PointerScope})
     */
    RewriteTuner.Decision decide(Path file, String role, DType dtype, Supplier<Tensor[]> inputs, Boolean bf16Override) {
        String shapes;
        try (PointerScope s = new PointerScope()) {
            shapes = describeShapes(inputs.get());
        }
        int threads = torch.get_num_threads();
        String key = String.join("|", "v" + VERSION, cpuKey(), "libtorch " + Torch.version(), threads + " threads",
                role, fingerprint(file), dtype.name(), shapes)
                + (bf16Override == null ? "" : "|bf16 compute forced " + bf16Override);
        RewriteTuner.Decision known = MEMO.get(key);
        if (known != null) {
            return known;
        }
        RewriteTuner.Decision cached = lookup(key);
        if (cached != null) {
            LOG.info("{}: rewrites {} (cached for this CPU in {})", role, cached, dir.resolve(FILE));
            MEMO.put(key, cached);
            return cached;
        }
        boolean low = dtype == DType.BFLOAT16 || dtype == DType.FLOAT16;
        RewriteTuner.Screen screen = !low ? RewriteTuner.Screen.NOT_APPLICABLE
                : bf16Override == null ? screen(dtype, threads)
                : bf16Override ? RewriteTuner.Screen.BF16_USABLE : RewriteTuner.Screen.BF16_EMULATED;
        LOG.info("{}: timing the graph rewrites on this CPU at {} ({} threads, kernel screen {}); once per CPU and "
                + "artifact{}", role, shapes, threads, screen, dir == null ? "" : ", cached in " + dir.resolve(FILE));
        Busy busy = Busy.start();
        RewriteTuner.Decision d;
        try {
            d = RewriteTuner.decide(dtype, screen, new ModuleTrial(file, role, dtype, inputs));
        } catch (ReferenceFailed e) {
            // the artifact does not run on the expected inputs: left as traced; the load's checks report why
            LOG.debug("{}: cannot time the rewrites: {}", role, e.getMessage());
            return new RewriteTuner.Decision(java.util.EnumSet.noneOf(Rewrite.class), Map.of(), Map.of(),
                    "not timed: the artifact did not run on the expected inputs");
        }
        double others = busy.othersShare();
        if (others > BUSY) {
            LOG.warn("{}: other processes used {}% of the CPUs while the rewrites were timed: the decision ({}) is used "
                    + "for this load only, not cached", role, Math.round(others * 100), d);
        } else {
            store(key, d, others);
        }
        MEMO.put(key, d);  // the same decision for every later load in this process: the same bits
        LOG.info("{}: rewrites {}", role, d);
        return d;
    }

    /**
     * Measures variants of one artifact: a fresh load with the rewrites, a warm call, then the fastest of up to 3 calls
     * (2 s at most); the output of the first variant measured is kept as the reference for the others.
     */
    static final class ModuleTrial implements RewriteTuner.Trial {
        private final Path file;
        private final String role;
        private final DType dtype;
        private final Supplier<Tensor[]> inputs;
        private float[] reference;

        ModuleTrial(Path file, String role, DType dtype, Supplier<Tensor[]> inputs) {
            this.file = file;
            this.role = role;
            this.dtype = dtype;
            this.inputs = inputs;
        }

        @Override
        public RewriteTuner.Measurement measure(Set<Rewrite> rewrites) {
            try {
                return run(rewrites);
            } catch (RuntimeException e) {
                if (reference == null) {
                    throw new ReferenceFailed(TorchModule.firstLine(e.getMessage()));
                }
                LOG.warn("{} with {} failed, not used: {}", role, Rewrite.describe(rewrites),
                        TorchModule.firstLine(e.getMessage()));
                return new RewriteTuner.Measurement(0, Double.POSITIVE_INFINITY);
            }
        }

        private RewriteTuner.Measurement run(Set<Rewrite> rewrites) {
            try (PointerScope scope = new PointerScope(); InferenceMode guard = new InferenceMode()) {
                JitModule m = torch.load(file.toAbsolutePath().toString());
                m.eval();
                TorchOptimizer.rewrite(m, role, dtype, rewrites);
                IValueVector args = new IValueVector();
                for (Tensor t : inputs.get()) {
                    args.push_back(new IValue(t));
                }
                float[] out = firstOutput(m.forward(args));
                double best = Double.POSITIVE_INFINITY;
                double total = 0;
                for (int i = 0; i < 3 && total < 2.0; i++) {
                    double t = callOnce(m, args);
                    best = Math.min(best, t);
                    total += t;
                }
                m.close();
                double error;
                if (reference == null) {
                    reference = out;
                    error = 0;
                } else {
                    error = relativeError(out, reference);
                }
                LOG.debug("{} with {}: {} s, error {}", role, Rewrite.describe(rewrites), best, error);
                return new RewriteTuner.Measurement(best, error);
            }
        }

        /** The first output tensor (a dict's first value), as float32 values. */
        private static float[] firstOutput(IValue v) {
            while (!v.isTensor()) {
                if (v.isTuple()) {
                    v = v.toTuple().elements().get(0);
                } else if (v.isGenericDict()) {
                    v = v.toGenericDict().begin().access().value();
                } else if (v.isList()) {
                    v = v.toList().get(0);
                } else if (v.isTensorList()) {
                    v = new IValue(v.toTensorVector().get(0));
                } else {
                    throw new IllegalStateException("module returned no tensor: " + v.tagKind().getString());
                }
            }
            Tensor t = Tensors.to(v.toTensor().contiguous(), DType.FLOAT32);
            float[] out = new float[Math.toIntExact(t.numel())];
            Tensors.copyTo(t, out, 0);
            return out;
        }
    }

    /** The reference variant (the first one) did not run: nothing can be timed. */
    static final class ReferenceFailed extends RuntimeException {
        ReferenceFailed(String message) {
            super(message);
        }
    }

    /** max |a - ref| / max |ref| (NaN or infinite values in {@code a} give infinity; lengths must agree). */
    static double relativeError(float[] a, float[] ref) {
        if (a.length != ref.length) {
            return Double.POSITIVE_INFINITY;
        }
        double maxRef = 0;
        double maxDiff = 0;
        for (int i = 0; i < a.length; i++) {
            if (!Float.isFinite(a[i])) {
                return Double.POSITIVE_INFINITY;
            }
            maxRef = Math.max(maxRef, Math.abs(ref[i]));
            maxDiff = Math.max(maxDiff, Math.abs((double) a[i] - ref[i]));
        }
        return maxRef == 0 ? (maxDiff == 0 ? 0 : Double.POSITIVE_INFINITY) : maxDiff / maxRef;
    }

    private static double callOnce(JitModule m, IValueVector args) {
        try (PointerScope s = new PointerScope()) {
            long t0 = System.nanoTime();
            m.forward(args);
            return (System.nanoTime() - t0) / 1e9;
        }
    }

    // -------------------------------------------------------------------------------------------- kernel screen

    private static final Map<String, RewriteTuner.Screen> SCREENS = new java.util.concurrent.ConcurrentHashMap<>();

    /** bfloat16 against float32 compute on a 3x3 convolution and a matmul (once per process and thread count). */
    RewriteTuner.Screen screen(DType dtype, int threads) {
        String key = String.join("|", "screen v" + VERSION, cpuKey(), "libtorch " + Torch.version(), threads + " threads",
                dtype.name());
        return SCREENS.computeIfAbsent(key, k -> {
            String stored = lookupScreen(k);
            if (stored != null) {
                return RewriteTuner.Screen.valueOf(stored);
            }
            double[] t = KernelScreen.time(dtype);
            RewriteTuner.Screen s = RewriteTuner.screen(t[0], t[1]);
            LOG.info("kernel screen ({} threads): {} convolution+matmul {} ms, in float32 compute {} ms: {}", threads,
                    dtype, String.format("%.2f", t[0] * 1e3), String.format("%.2f", t[1] * 1e3), s);
            storeScreen(k, s);
            return s;
        });
    }

    // -------------------------------------------------------------------------------------------- keys

    private static volatile String cpuKey;

    /** The CPU's model name and a hash of its flags (from /proc/cpuinfo), or the JVM's os.arch. */
    static String cpuKey() {
        String k = cpuKey;
        if (k == null) {
            String model = System.getProperty("os.arch");
            Set<String> flags = new TreeSet<>(TorchOptimizer.Cpu.flags());
            try {
                for (String line : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
                    if (line.startsWith("model name")) {
                        model = line.substring(line.indexOf(':') + 1).trim();
                        break;
                    }
                }
            } catch (IOException | RuntimeException e) {
                LOG.debug("cannot read /proc/cpuinfo: {}", e.toString());
            }
            k = model + " (" + TorchOptimizer.Cpu.family() + ", flags " + sha256(String.join(" ", flags)
                    .getBytes(StandardCharsets.UTF_8)).substring(0, 12) + ")";
            cpuKey = k;
        }
        return k;
    }

    static String describeShapes(Tensor[] in) {
        StringBuilder sb = new StringBuilder();
        for (Tensor t : in) {
            if (sb.length() > 0) {
                sb.append(' ');
            }
            sb.append(TorchModule.toDType(t.scalar_type())).append(Arrays.toString(Tensors.shape(t)).replace(" ", ""));
        }
        return sb.toString();
    }

    /** SHA-256 of the file, remembered in the cache by path, size and modification time. */
    String fingerprint(Path file) {
        try {
            String id = file.toAbsolutePath().normalize() + "|" + Files.size(file) + "|" + Files.getLastModifiedTime(file).toMillis();
            String known = lookupFingerprint(id);
            if (known != null) {
                return known;
            }
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            try (InputStream in = Files.newInputStream(file)) {
                byte[] buf = new byte[1 << 20];
                for (int n; (n = in.read(buf)) > 0; ) {
                    md.update(buf, 0, n);
                }
            }
            String sha = HexFormat.of().formatHex(md.digest());
            storeFingerprint(id, sha);
            return sha;
        } catch (IOException | NoSuchAlgorithmException e) {
            return "unhashed:" + file.toAbsolutePath();
        }
    }

    static String sha256(byte[] b) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    // -------------------------------------------------------------------------------------------- the cache file

    private RewriteTuner.Decision lookup(String key) {
        JsonNode e = read().path("decisions").path(key);
        if (!e.isObject()) {
            return null;
        }
        try {
            Map<String, Double> timings = new LinkedHashMap<>();
            e.path("timings").fields().forEachRemaining(f -> timings.put(f.getKey(), f.getValue().asDouble()));
            Map<String, Double> rejected = new LinkedHashMap<>();
            e.path("rejected").fields().forEachRemaining(f -> rejected.put(f.getKey(), f.getValue().asDouble()));
            return new RewriteTuner.Decision(Rewrite.parse(e.path("rewrites").asText()), timings, rejected, "cached");
        } catch (IllegalArgumentException bad) {
            return null;  // a rewrite this version does not know: measure again
        }
    }

    private void store(String key, RewriteTuner.Decision d, double others) {
        update(root -> {
            ObjectNode e = ((ObjectNode) root.with("decisions")).putObject(key);
            e.put("rewrites", Rewrite.describe(d.rewrites()));
            ObjectNode t = e.putObject("timings");
            d.timings().forEach(t::put);
            ObjectNode r = e.putObject("rejected");
            d.rejected().forEach((k, v) -> r.put(k, Double.isFinite(v) ? v : Double.MAX_VALUE));
            e.put("how", d.how());
            e.put("measured", Instant.now().toString());
            e.put("others_cpu_share", Math.round(others * 1000) / 1000.0);
        });
    }

    private String lookupScreen(String key) {
        JsonNode n = read().path("screens").path(key);
        return n.isTextual() ? n.asText() : null;
    }

    private void storeScreen(String key, RewriteTuner.Screen s) {
        update(root -> ((ObjectNode) root.with("screens")).put(key, s.name()));
    }

    private String lookupFingerprint(String id) {
        JsonNode n = read().path("files").path(id);
        return n.isTextual() ? n.asText() : null;
    }

    private void storeFingerprint(String id, String sha) {
        update(root -> ((ObjectNode) root.with("files")).put(id, sha));
    }

    private JsonNode read() {
        if (dir == null) {
            return JSON.createObjectNode();
        }
        synchronized (FILE_LOCK) {
            Path f = dir.resolve(FILE);
            try {
                if (Files.isRegularFile(f)) {
                    JsonNode n = JSON.readTree(f.toFile());
                    if (n != null && n.isObject()) {
                        return n;
                    }
                }
            } catch (IOException | RuntimeException e) {
                LOG.warn("ignoring the unreadable CPU tuning cache {}: {}", f, e.getMessage());
            }
            return JSON.createObjectNode();
        }
    }

    private void update(java.util.function.Consumer<ObjectNode> change) {
        if (dir == null) {
            return;
        }
        synchronized (FILE_LOCK) {
            try {
                ObjectNode root = (ObjectNode) read();
                change.accept(root);
                Files.createDirectories(dir);
                Path tmp = Files.createTempFile(dir, FILE, ".tmp");
                JSON.writerWithDefaultPrettyPrinter().writeValue(tmp.toFile(), root);
                Files.move(tmp, dir.resolve(FILE), StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            } catch (IOException | RuntimeException e) {
                LOG.warn("cannot write the CPU tuning cache in {}: {} (decisions will be measured again next time)",
                        dir, e.getMessage());
            }
        }
    }

    // -------------------------------------------------------------------------------------------- busy machine

    /** CPU time used by other processes over an interval, from /proc/stat and /proc/self/stat (Linux). */
    record Busy(long[] total, long self, long nanos) {
        static Busy start() {
            return new Busy(procStat(), selfTicks(), System.nanoTime());
        }

        /** Other processes' share of all CPUs since {@link #start}, 0 when unknown. */
        double othersShare() {
            long[] now = procStat();
            long selfNow = selfTicks();
            if (now == null || total == null || self < 0 || selfNow < 0) {
                return 0;
            }
            double busyTicks = (now[0] - total[0]) - (selfNow - self);
            double allTicks = now[1] - total[1];
            return allTicks <= 0 ? 0 : Math.max(0, busyTicks / allTicks);
        }

        /** {busy, total} jiffies of the aggregate "cpu" line. */
        private static long[] procStat() {
            try {
                List<String> lines = Files.readAllLines(Path.of("/proc/stat"));
                String[] f = lines.get(0).trim().split("\\s+");
                long all = 0;
                long idle = 0;
                for (int i = 1; i < f.length && i <= 8; i++) {
                    long v = Long.parseLong(f[i]);
                    all += v;
                    if (i == 4 || i == 5) {  // idle, iowait
                        idle += v;
                    }
                }
                return new long[] {all - idle, all};
            } catch (IOException | RuntimeException e) {
                return null;
            }
        }

        /** utime + stime of this process, in jiffies. */
        private static long selfTicks() {
            try {
                String s = Files.readString(Path.of("/proc/self/stat"));
                String[] f = s.substring(s.lastIndexOf(')') + 2).split(" ");
                return Long.parseLong(f[11]) + Long.parseLong(f[12]);
            } catch (IOException | RuntimeException e) {
                return -1;
            }
        }
    }
}
