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
 * written atomically; a missing or unreadable file means measuring again. A decision measured while this
 * process's threads waited for a CPU more than a quarter of the time they ran (other processes competing for the
 * cores) is used for that load only and not cached.
 */
final class CpuTuning {
    private static final Logger LOG = LoggerFactory.getLogger(CpuTuning.class);
    /** Bumped whenever a rewrite changes what it produces: older cached decisions are then ignored. */
    static final int VERSION = 2;
    static final String FILE = "cpu-rewrites.json";
    /** Time waited for a CPU per unit of time run above which a measurement is not cached. */
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
            try (ModuleTrial trial = new ModuleTrial(file, role, dtype, inputs)) {
                d = RewriteTuner.decide(dtype, screen, trial);
            }
        } catch (ReferenceFailed e) {
            // the artifact does not run on the expected inputs: left as traced; the load's checks report why
            LOG.debug("{}: cannot time the rewrites: {}", role, e.getMessage());
            return new RewriteTuner.Decision(java.util.EnumSet.noneOf(Rewrite.class), Map.of(), Map.of(), Map.of(),
                    "not timed: the artifact did not run on the expected inputs", List.of());
        }
        double others = busy.othersShare();
        if (others > BUSY) {
            LOG.warn("{}: the machine was busy while the rewrites were timed (this process waited {} ms for a CPU per "
                    + "second it ran): the decision ({}) is used for this load only, not cached", role,
                    Math.round(others * 1000), d);
        } else {
            store(key, d, others);
        }
        MEMO.put(key, d);  // the same decision for every later load in this process: the same bits
        LOG.info("{}: rewrites {}", role, d);
        return d;
    }

    /**
     * Measures variants of one artifact side by side: each variant is a load of the file with its rewrites (kept loaded
     * while the tuner may measure it again), called once to warm up, then the variants are called in turn, 2-5 rounds
     * (one when a round takes over 8 s), and the fastest call of each counts. The output of the very first variant is the
     * reference for the others.
     */
    static final class ModuleTrial implements RewriteTuner.Trial, AutoCloseable {
        private final Path file;
        private final String role;
        private final DType dtype;
        private final Supplier<Tensor[]> inputs;
        private final Map<Set<Rewrite>, Loaded> loaded = new LinkedHashMap<>();
        private float[] reference;

        /** A loaded variant; {@code failure} when it could not be loaded or run. */
        private record Loaded(JitModule module, boolean inert, float[] output, String failure) {
        }

        ModuleTrial(Path file, String role, DType dtype, Supplier<Tensor[]> inputs) {
            this.file = file;
            this.role = role;
            this.dtype = dtype;
            this.inputs = inputs;
        }

        @Override
        public List<RewriteTuner.Measurement> measure(List<? extends Set<Rewrite>> variants) {
            try (PointerScope scope = new PointerScope(); InferenceMode guard = new InferenceMode()) {
                IValueVector args = new IValueVector();
                for (Tensor t : inputs.get()) {
                    args.push_back(new IValue(t));
                }
                List<Loaded> ls = new java.util.ArrayList<>();
                for (Set<Rewrite> v : variants) {
                    ls.add(load(v, args));
                }
                double[] best = new double[ls.size()];
                Arrays.fill(best, Double.POSITIVE_INFINITY);
                double roundTime = 0;
                for (int round = 0; round < 5 && (round < 2 || roundTime * round < 1.5); round++) {
                    roundTime = 0;
                    for (int i = 0; i < ls.size(); i++) {
                        if (ls.get(i).failure() == null) {
                            double t = callOnce(ls.get(i).module(), args);
                            best[i] = Math.min(best[i], t);
                            roundTime += t;
                        }
                    }
                    if (round == 0 && roundTime > 8) {
                        break;  // slow calls (a 512x512 VAE decode): one interleaved round is enough
                    }
                }
                List<RewriteTuner.Measurement> out = new java.util.ArrayList<>();
                for (int i = 0; i < ls.size(); i++) {
                    Loaded l = ls.get(i);
                    if (l.failure() != null) {
                        out.add(new RewriteTuner.Measurement(0, Double.POSITIVE_INFINITY));
                        continue;
                    }
                    double error = l.output() == reference ? 0 : relativeError(l.output(), reference);
                    LOG.debug("{} with {}: {} s, error {}", role, Rewrite.describe(variants.get(i)), best[i], error);
                    out.add(new RewriteTuner.Measurement(best[i], error, l.inert()));
                }
                return out;
            }
        }

        /** The variant, loaded (and warmed up) if it is not yet. */
        private Loaded load(Set<Rewrite> v, IValueVector args) {
            Set<Rewrite> key = v.isEmpty() ? java.util.EnumSet.noneOf(Rewrite.class) : java.util.EnumSet.copyOf(v);
            Loaded l = loaded.get(key);
            if (l != null) {
                return l;
            }
            JitModule m = null;
            try (PointerScope scope = new PointerScope()) {
                m = torch.load(file.toAbsolutePath().toString());
                m.eval();
                TorchOptimizer.Report report = TorchOptimizer.rewrite(m, role, dtype, key);
                boolean inert = !report.allEffective() || !report.rewrites().equals(key);
                float[] out = firstOutput(m.forward(args));
                m.retainReference();  // survives the scope: closed by retain/close
                if (reference == null) {
                    reference = out;
                }
                l = new Loaded(m, inert, out, null);
            } catch (RuntimeException e) {
                if (m != null) {
                    m.close();
                }
                if (reference == null) {
                    throw new ReferenceFailed(TorchModule.firstLine(e.getMessage()));
                }
                LOG.warn("{} with {} failed, not used: {}", role, Rewrite.describe(key), TorchModule.firstLine(e.getMessage()));
                l = new Loaded(null, true, null, e.getMessage());
            }
            loaded.put(key, l);
            return l;
        }

        @Override
        public void retain(Set<Rewrite> keep) {
            var it = loaded.entrySet().iterator();
            while (it.hasNext()) {
                var e = it.next();
                if (!e.getKey().equals(keep)) {
                    if (e.getValue().module() != null) {
                        e.getValue().module().close();
                    }
                    it.remove();
                }
            }
        }

        @Override
        public void close() {
            for (Loaded l : loaded.values()) {
                if (l.module() != null) {
                    l.module().close();
                }
            }
            loaded.clear();
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
            Map<String, Double> errors = new LinkedHashMap<>();
            e.path("errors").fields().forEachRemaining(f -> errors.put(f.getKey(), f.getValue().asDouble()));
            Map<String, Double> rejected = new LinkedHashMap<>();
            e.path("rejected").fields().forEachRemaining(f -> rejected.put(f.getKey(), f.getValue().asDouble()));
            List<String> rounds = new java.util.ArrayList<>();
            e.path("rounds").forEach(r -> rounds.add(r.asText()));
            return new RewriteTuner.Decision(Rewrite.parse(e.path("rewrites").asText()), timings, errors, rejected,
                    "cached", rounds);
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
            ObjectNode er = e.putObject("errors");
            d.errors().forEach((k, v) -> er.put(k, Double.isFinite(v) ? v : Double.MAX_VALUE));
            ObjectNode r = e.putObject("rejected");
            d.rejected().forEach((k, v) -> r.put(k, Double.isFinite(v) ? v : Double.MAX_VALUE));
            e.put("how", d.how());
            var rounds = e.putArray("rounds");
            d.rounds().forEach(rounds::add);
            e.put("measured", Instant.now().toString());
            e.put("cpu_wait_per_run", Math.round(others * 1000) / 1000.0);
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

    /**
     * How much the measurement was slowed by other processes: the time this process's threads spent runnable but
     * waiting for a CPU ({@code /proc/self/task/*}{@code /schedstat}, Linux), against the time its threads ran. Other
     * processes' CPU use alone says little (they take idle cores during loads and single-threaded phases); waiting for a
     * CPU is what skews a timing.
     */
    record Busy(long[] begin, long nanos) {
        static Busy start() {
            return new Busy(schedstat(), System.nanoTime());
        }

        /** Time waited for a CPU per unit of time run, since {@link #start}; 0 when unknown. */
        double othersShare() {
            long[] now = schedstat();
            if (now == null || begin == null) {
                return 0;
            }
            double ran = now[0] - begin[0];
            double waited = now[1] - begin[1];
            return ran <= 0 ? 0 : Math.max(0, waited / ran);
        }

        /** {run, wait} nanoseconds summed over this process's threads (threads that ended are not counted). */
        private static long[] schedstat() {
            try (var tasks = Files.list(Path.of("/proc/self/task"))) {
                long run = 0;
                long wait = 0;
                for (Path t : (Iterable<Path>) tasks::iterator) {
                    try {
                        String[] f = Files.readString(t.resolve("schedstat")).trim().split("\\s+");
                        run += Long.parseLong(f[0]);
                        wait += Long.parseLong(f[1]);
                    } catch (IOException | RuntimeException gone) {
                        // the thread ended meanwhile
                    }
                }
                return new long[] {run, wait};
            } catch (IOException | RuntimeException e) {
                return null;
            }
        }
    }
}
